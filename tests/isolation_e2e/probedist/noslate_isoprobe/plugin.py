"""Hooks of the test-only ``isoprobe`` runtime (warmfork-capable, cold start through the launcher)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from noslate_testkit.plugin import compile_python

from kernel.errors import StartError
from kernel.hookspecs import hookimpl
from kernel.interfaces import RuntimeSpec, SpawnInfo, StartRequest


class ProbeRuntime:
    name = "isoprobe"
    seed_entries = ("noslate_isoprobe.worker:load", "noslate_isoprobe.worker:serve")

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    async def prepare(self, code: bytes, filename: str, profile: Any = None) -> bytes:
        return compile_python(code, filename)

    async def start(self, request: StartRequest) -> Any:
        """Cold: ``python -m noslate_isoprobe.worker --fd 3 INIT`` through the launcher."""
        launcher = getattr(self.kernel, "launcher", None)
        if launcher is None:
            raise StartError("isoprobe needs the kernel's launcher", fatal=True)
        init = {"instance": request.instance, "code": request.version.artifact.decode()}
        argv = [sys.executable, "-m", "noslate_isoprobe.worker", "--fd", "3", json.dumps(init)]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        info = SpawnInfo(request.version.name, request.version.version, request.instance, request.role)
        return await launcher.spawn(
            argv, env, pass_fds={3: request.channel_fd}, sandbox=request.sandbox, info=info
        )


@hookimpl
def noslate_runtimes() -> list[RuntimeSpec]:
    return [RuntimeSpec("isoprobe", ProbeRuntime, "test-only Python probe worker")]


@hookimpl
def noslate_launcher_preload() -> list[str]:
    return ["noslate_isoprobe.worker"]
