"""What a pre-forked spare runs inside its process (imported in seeds: stdlib only).

A spare is forked and attached (cgroups) before any request needs it. It first runs
the runtime's optional warm-up entry (e.g. one call into the engine, so the pages that
the first call after a fork writes are copied now, not on the request path), then
waits on its hand-off socket. Taking it sends the real channel (SCM_RIGHTS) and the
instance's init; only then does it call the runtime's ``serve`` (fresh randomness,
time origin and identity from that moment).
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
from typing import Any, NoReturn

from kernel.launcher.child import resolve

ANC_SIZE = socket.CMSG_SPACE(4 * 4)


def serve_spare(loaded: Any, fd: int, payload: dict[str, Any]) -> NoReturn:
    """In the spare: warm up, wait for the hand-off, then become the real instance."""
    serve = resolve(payload["serve"])
    warm = payload.get("warm")
    if warm:
        with contextlib.suppress(Exception):  # only an optimisation
            resolve(warm)(loaded)
    json.loads(json.dumps({"function": "", "env": {}, "limits": {}}))  # its first-call page copies, now
    handoff = socket.socket(fileno=fd)
    buf = b""
    fds: list[int] = []
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        data, anc, _flags, _addr = handoff.recvmsg(1 << 20, ANC_SIZE)
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(cdata[: len(cdata) - len(cdata) % got.itemsize])
                fds.extend(got)
        if not data:
            os._exit(0)  # never taken: the daemon dropped it
        buf += data
    handoff.close()
    serve(loaded, fds[0], json.loads(buf[4:]))
    os._exit(0)
