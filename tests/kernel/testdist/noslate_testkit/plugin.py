"""A runtime named ``pytest``: deployed code is Python defining ``handle(req, body, host)``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import trio

from kernel.errors import DeployError
from kernel.hookspecs import hookimpl
from kernel.interfaces import RuntimeSpec, SpawnInfo, StartRequest
from kernel.localprocess import LocalProcess


def compile_python(code: bytes, filename: str) -> bytes:
    """``code`` itself once it compiles; a SyntaxError is a DeployError at file:line:col."""
    try:
        compile(code, filename, "exec")
    except SyntaxError as exc:
        raise DeployError(exc.msg, f"{filename}:{exc.lineno}:{exc.offset}") from None
    return code


class PyRuntime:
    name = "pytest"

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    async def prepare(self, code: bytes, filename: str, profile: Any) -> bytes:
        return compile_python(code, filename)

    async def start(self, request: StartRequest) -> Any:
        init = {
            "function": request.version.name,
            "version": request.version.version,
            "instance": request.instance,
            "env": request.version.profile.env,
            "code": request.version.artifact.decode(),
        }
        argv = [sys.executable, "-m", "noslate_testkit.worker", "--fd", "3", json.dumps(init)]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        launcher = getattr(self.kernel, "launcher", None)
        if launcher is not None:
            info = SpawnInfo(request.version.name, request.version.version, request.instance, request.role)
            proc = await launcher.spawn(
                argv, env, pass_fds={3: request.channel_fd}, sandbox=request.sandbox, info=info
            )
            # like an adopted warmfork spare: requests go out before the Hello
            proc.serving = bool(request.version.profile.env.get("TESTKIT_SERVING"))
            return proc
        os.set_inheritable(request.channel_fd, True)
        argv[4] = str(request.channel_fd)
        proc = await trio.lowlevel.open_process(argv, env=env, pass_fds=(request.channel_fd,))
        return LocalProcess(proc)


@hookimpl
def noslate_runtimes() -> list[RuntimeSpec]:
    return [RuntimeSpec("pytest", PyRuntime, "test-only Python worker")]
