"""A recording isolation layer for the launcher tests (real files, real pids).

``prepare`` needs ``sandbox.annotations["test.dir"]``; ``attach`` and ``apply`` drop a
file there per process, so tests can see which ran where, and in which order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox


class RecordingLayer:
    def __init__(self, name: str, phase: str) -> None:
        self.name = name
        self.phase = phase

    def _dir(self, sandbox: Sandbox) -> Path | None:
        d = sandbox.annotations.get("test.dir")
        return Path(d) if d else None

    def prepare(self, sandbox: Sandbox, info: SpawnInfo) -> None:
        d = self._dir(sandbox)
        if d is not None:
            (d / f"prepare-{self.name}-{info.role}-{info.instance}").write_text("")

    def attach(self, sandbox: Sandbox, pid: int) -> None:
        d = self._dir(sandbox)
        if d is None:
            return
        if sandbox.annotations.get("test.fail_attach"):
            raise PermissionError("attach refused by test")
        (d / f"attach-{self.name}-{pid}").write_text(json.dumps({"by": os.getpid()}))

    def apply(self, sandbox: Sandbox) -> None:
        d = self._dir(sandbox)
        if d is None:
            return
        pid = os.getpid()
        attached = (d / f"attach-{self.name}-{pid}").exists()
        role = sandbox.annotations.get("noslate.role", "")
        (d / f"apply-{self.name}-{role}-{pid}").write_text(json.dumps({"attached_first": attached}))

    def release(self, sandbox: Sandbox, info: SpawnInfo) -> str | None:
        d = self._dir(sandbox)
        if d is not None:
            (d / f"release-{self.name}-{info.role}-{info.instance}").write_text("")
        return sandbox.annotations.get("test.cause") or None


def cgroup_layer() -> RecordingLayer:
    return RecordingLayer("rec_cgroup", "cgroup")


def seccomp_layer() -> RecordingLayer:
    return RecordingLayer("rec_seccomp", "seccomp")
