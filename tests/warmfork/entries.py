"""Tiny Python seed entries used by the warmfork tests (stand-ins for runtime_v8's load/serve).

``load`` runs in the seed; ``serve`` runs in each forked instance, reports facts about
itself as one JSON line on its channel, then waits until the channel closes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import sys
import time
from typing import Any


def load(payload: dict[str, Any]) -> dict[str, Any]:
    code = payload.get("artifact", b"").decode()
    if code.startswith("throw "):
        raise ValueError(code[6:])
    if payload.get("fail"):
        raise ValueError(payload["fail"])
    if payload.get("crash"):
        os._exit(3)
    if payload.get("sleep"):
        time.sleep(payload["sleep"])
    keep = open("/dev/null", "rb") if payload.get("open_file") else None  # noqa: SIM115
    return {
        "seed_pid": os.getpid(),
        "drawn_in_seed": random.random(),
        "keep": keep,
        "keep_fd": keep.fileno() if keep else None,
        "code": payload.get("code", code),
    }


def open_fds() -> list[int]:
    """Descriptors open here (minus the one the listing itself used)."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            fcntl.fcntl(int(name), fcntl.F_GETFD)
        except OSError:
            continue
        out.append(int(name))
    return sorted(out)


def facts(fd: int | None = None) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "random": random.random(),
        "urandom": os.urandom(16).hex(),
        "fds": open_fds(),
        "channel": fd,
    }


def warm(loaded: dict[str, Any]) -> None:
    """The spare warm-up entry: runs in a pre-forked spare before it is taken."""
    loaded["warmed_in"] = os.getpid()


def serve(loaded: dict[str, Any], fd: int, payload: dict[str, Any]) -> None:
    out = facts(fd) | {
        "warmed_in": loaded.get("warmed_in"),
        "seed_pid": loaded["seed_pid"],
        "drawn_in_seed": loaded["drawn_in_seed"],
        "keep_fd": loaded["keep_fd"],
        "code": loaded["code"],
        "payload": payload,
    }
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(out).encode() + b"\n")
        while os.read(fd, 4096):
            pass
    os._exit(0)


def cold_main() -> None:
    """``python -m tests.warmfork.entries FD``: the cold-start equivalent."""
    fd = int(sys.argv[1])
    os.write(fd, json.dumps(facts(fd) | {"env": dict(os.environ)}).encode() + b"\n")
    while os.read(fd, 4096):
        pass


if __name__ == "__main__":
    cold_main()
