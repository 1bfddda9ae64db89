"""Pre-forked spare instances: fork and cgroup attach happen before the request.

A spare is an instance forked from the seed that waits on a hand-off socket
(:mod:`plugins.warmfork.spare_child` runs inside it). Taking it sends the real
channel descriptor (SCM_RIGHTS) and the instance's init; only then does it call the
runtime's ``serve`` (so randomness and time origin are fresh from that moment, and the
identity is the kernel's instance id). A runtime may name a warm-up entry
(``runtime.spare_warm_entry``, called with the loaded object) that the spare runs
before it waits.
"""

from __future__ import annotations

import array
import json
import socket
from typing import TYPE_CHECKING, Any

import trio
from attrs import define

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox

if TYPE_CHECKING:
    from plugins.warmfork.manager import SeedManager, SeedSlot

SPARE_ENTRY = "plugins.warmfork.spare_child:serve_spare"
"""Runs in the spare (a module with no heavy imports: the seed imports it once)."""


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
            payload={
                "serve": slot.runtime.seed_entries[1],
                "warm": getattr(slot.runtime, "spare_warm_entry", None),
            },
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
    """Give the spare its channel and init; return its process.

    One ``sendmsg`` on the idle hand-off socket, without a trio round trip; only a
    message that does not fit the socket buffer waits for the rest to go out. Our end
    of the hand-off socket is closed when the instance exits: closing it while the
    descriptor is still in flight costs ~0.3 ms of kernel work on the request path
    (the unix-socket descriptor garbage collector), closing it later costs nothing.
    """
    data = json.dumps(init).encode()
    message = len(data).to_bytes(4, "big") + data
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [channel_fd]))]
    handoff = spare.handoff
    try:
        handoff.setblocking(False)
        try:
            sent = handoff.sendmsg([message], anc)
        except BlockingIOError:
            sent = 0
        if sent == 0:  # nothing went out: the descriptor still has to go with the first byte
            sock = trio.socket.from_stdlib_socket(handoff)
            with trio.fail_after(5):
                sent = await sock.sendmsg([message], anc)
        rest = message[sent:]
        if rest:
            sock = trio.socket.from_stdlib_socket(handoff)
            with trio.fail_after(5):
                while rest:
                    rest = rest[await sock.send(rest) :]
    except BaseException:
        handoff.close()
        raise
    on_exit = getattr(spare.process, "on_exit", None)
    if on_exit is None:
        handoff.close()
    else:
        on_exit(handoff.close)
    return spare.process
