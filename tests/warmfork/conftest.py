"""Fixtures for the launcher and warmfork tests: real launcher processes, real forks."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from kernel.launcher.client import Launcher, Seed, WorkerProcess

from . import entries, layers

ENTRIES = entries.__name__
LAYERS = layers.__name__
IMPORT_ROOT = str(Path(entries.__file__).parents[len(ENTRIES.split(".")) - 1])
ENV = {"PYTHONPATH": IMPORT_ROOT}
LOAD = f"{ENTRIES}:load"
SERVE = f"{ENTRIES}:serve"


@pytest.fixture
async def launcher() -> AsyncIterator[Launcher]:
    with trio.fail_after(30):
        launcher = await Launcher.start(plugins=False, env=ENV)
    async with launcher:
        yield launcher


@pytest.fixture
async def layered() -> AsyncIterator[Launcher]:
    """A launcher with two recording layers (phases cgroup and seccomp) on both sides."""
    daemon_layers = [layers.cgroup_layer(), layers.seccomp_layer()]
    factories = [f"{LAYERS}:cgroup_layer", f"{LAYERS}:seccomp_layer"]
    with trio.fail_after(30):
        launcher = await Launcher.start(
            plugins=False, env=ENV, layers=daemon_layers, layer_factories=factories
        )
    async with launcher:
        yield launcher


async def read_json_line(sock: trio.socket.SocketType) -> dict[str, Any]:
    buf = b""
    with trio.fail_after(10):
        while not buf.endswith(b"\n"):
            data = await sock.recv(65536)
            assert data, f"channel closed before a line arrived (got {buf!r})"
            buf += data
    return json.loads(buf)


async def fork(seed: Seed, payload: Any = None, **kw: Any) -> tuple[WorkerProcess, dict[str, Any], Any]:
    """Fork an instance of a test seed; return it, the facts it reported and our channel end."""
    ours, theirs = socket.socketpair()
    try:
        with trio.fail_after(10):
            proc = await seed.fork_instance(
                entry=SERVE, payload=payload or {}, channel_fd=theirs.fileno(), **kw
            )
    finally:
        theirs.close()
    sock = trio.socket.from_stdlib_socket(ours)
    return proc, await read_json_line(sock), sock


def alive(pid: int) -> bool:
    """Running (not gone and not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def fd_targets(pid: int) -> dict[int, str]:
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
    return out


def socket_inode(sock: socket.socket) -> str:
    return f"socket:[{os.fstat(sock.fileno()).st_ino}]"
