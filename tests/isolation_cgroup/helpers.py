"""Helpers for the isolation_cgroup tests: spawning real processes into cgroups."""

from __future__ import annotations

import os
import select
import sys
import time
import uuid

import pytest

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox
from plugins.isolation_cgroup.layer import CgroupLayer
from plugins.isolation_cgroup.mountinfo import detect


def unique_root() -> str:
    return f"noslate-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _v1_usable() -> str:
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    layout = detect()
    missing = [c for c in ("memory", "cpu", "cpuacct", "pids") if c not in layout.v1]
    return f"no cgroup v1 hierarchy for {missing}" if missing else ""


V1_SKIP = _v1_usable()
needs_v1 = pytest.mark.skipif(bool(V1_SKIP), reason=V1_SKIP)


class RecordingKernel:
    """Stands in for the daemon's kernel: collects function-log lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str, str]] = []

    def log(self, function: str, level: str, message: str, instance: str = "") -> None:
        self.lines.append((function, level, message, instance))


def spawn_in(layer: CgroupLayer, sandbox: Sandbox, code: str) -> tuple[int, int]:
    """Fork a child into its cgroup the way the launcher does, then exec ``python -c code``.

    ``join = child``: the child calls ``layer.apply``; ``join = launcher``: the child
    waits on a gate until the parent has called ``layer.attach(pid)``.
    Returns (pid, read end of the child's stdout).
    """
    r, w = os.pipe()
    gate_r, gate_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.dup2(w, 1)
            os.close(gate_w)
            if os.read(gate_r, 1) != b"g":
                os._exit(126)
            layer.apply(sandbox)
            os.execv(sys.executable, [sys.executable, "-c", code])
        finally:
            os._exit(127)
    os.close(w)
    os.close(gate_r)
    layer.attach(sandbox, pid)
    os.write(gate_w, b"g")
    os.close(gate_w)
    return pid, r


def wait_exit(pid: int, timeout: float = 20.0) -> int:
    """waitpid with a deadline (kills the child and fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"child {pid} did not exit within {timeout}s")


def read_all(fd: int, timeout: float = 10.0) -> str:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    os.close(fd)
    return out.decode()


def info_for(function: str, instance: str, role: str = "instance") -> SpawnInfo:
    return SpawnInfo(function=function, version="sha256:test", instance=instance, role=role)
