"""Pre-forked spare instances: fork and cgroup attach happen before the request.

A spare is an instance forked from the seed that waits on a hand-off socket. Taking
it sends the real channel descriptor (SCM_RIGHTS) and the instance's init; only then
does it call the runtime's ``serve`` (so randomness and time origin are fresh from
that moment, and the identity is the kernel's instance id).
"""

from __future__ import annotations

import array
import json
import os
import socket
from typing import TYPE_CHECKING, Any, NoReturn

import trio
from attrs import define

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox

if TYPE_CHECKING:
    from plugins.warmfork.manager import SeedManager, SeedSlot

SPARE_ENTRY = "plugins.warmfork.spares:serve_spare"


@define(eq=False)
class Spare:
    process: Any
    handoff: socket.socket
    instance: str


async def fork_spare(manager: SeedManager, slot: SeedSlot) -> Spare:
    """Fork a spare from the slot's seed (runs in the warmfork service)."""
    spare_id = f"{slot.function}-spare-{next(slot.seq)}"
    sandbox = Sandbox()
    sandbox.process.title = f"noslate:{slot.function}@{slot.version[:19]}#spare"
    sandbox.annotations.update(
        {
            "noslate.function": slot.function,
            "noslate.version": slot.version,
            "noslate.instance": spare_id,
            "noslate.role": "instance",
        }
    )
    manager.kernel.hooks.sandbox_contribute(sandbox=sandbox, function=slot.fv.profile, role="instance")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = await slot.seed.fork_instance(
            entry=SPARE_ENTRY,
            payload={"serve": slot.runtime.seed_entries[1]},
            channel_fd=theirs.fileno(),
            sandbox=sandbox,
            info=SpawnInfo(slot.function, slot.version, spare_id, "instance"),
            timeout=manager.config.fork_timeout,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Spare(proc, ours, spare_id)


async def adopt(spare: Spare, channel_fd: int, init: dict[str, Any]) -> Any:
    """Give the spare its channel and init; return its process."""
    data = json.dumps(init).encode()
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [channel_fd]))]
    sock = trio.socket.from_stdlib_socket(spare.handoff)
    try:
        with trio.fail_after(5):
            await sock.sendmsg([len(data).to_bytes(4, "big") + data], anc)
    finally:
        sock.close()
    return spare.process


def serve_spare(loaded: Any, fd: int, payload: dict[str, Any]) -> NoReturn:
    """In the spare: wait for the hand-off, then become the real instance."""
    from kernel.launcher.child import resolve
    from kernel.launcher.wire import ANC_SIZE, fds_from_ancillary

    buf = b""
    fds: list[int] = []
    handoff = socket.socket(fileno=fd)
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        data, anc, _f, _a = handoff.recvmsg(1 << 20, ANC_SIZE)
        fds += fds_from_ancillary(anc)
        if not data:
            os._exit(0)  # never taken: the daemon dropped it
        buf += data
    handoff.close()
    init = json.loads(buf[4:])
    serve = resolve(payload["serve"])
    serve(loaded, fds[0], init)
    os._exit(0)
