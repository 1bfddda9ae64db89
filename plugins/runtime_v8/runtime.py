"""The ``aworker`` runtime object: deploy-time ``prepare`` and cold ``start``."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from kernel import jsprepare as preparing
from kernel import warmup
from kernel.buildjob import BuildJobs
from kernel.errors import DeployError, StartError
from kernel.interfaces import FunctionVersion, SpawnInfo, StartRequest
from kernel.localprocess import LocalProcess
from kernel.profile import FunctionProfile
from plugins.runtime_v8.config import RuntimeV8Config
from plugins.runtime_v8.engine import BASE_FLAGS, SEED_FLAGS

NAME = "aworker"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHANNEL_FD = 3
INIT_FD = 4


def base_init(fv: FunctionVersion, instance: str) -> dict[str, Any]:
    """The ``init`` dict ``load``/``serve`` receive (see ``worker.py``)."""
    profile = fv.profile
    limits = profile.resource_limit
    return {
        "function": profile.name,
        "version": fv.version,
        "instance": instance,
        "env": {e.key: e.value for e in profile.environments},
        "v8_options": list(profile.worker.v8_options),
        "limits": {
            "memory": limits.memory,
            "cpu": limits.cpu,
            "pids": limits.pids,
            "cpu_time_limit_ms": profile.worker.cpu_time_limit_ms,
        },
        "log_level": "info",
    }


class V8Runtime:
    """Runs functions on embedded V8 through STPyV8 (``plugins.runtime_v8.worker``)."""

    name = NAME
    seed_entries = ("plugins.runtime_v8.worker:load", "plugins.runtime_v8.worker:serve")
    spare_warm_entry = "plugins.runtime_v8.worker:warm"
    """Run by a pre-forked warmfork spare before it is taken (see ``worker.warm``)."""

    def __init__(self, kernel: Any, config: RuntimeV8Config | None = None) -> None:
        self.kernel = kernel
        self.config = config or RuntimeV8Config()

    # ---- deploy -----------------------------------------------------------------

    async def prepare(self, code: bytes, filename: str, profile: FunctionProfile | None = None) -> bytes:
        """Syntax-check scripts, bundle modules/TypeScript/JSX (esbuild)."""
        if len(code) > self.config.max_code_bytes:
            raise DeployError(
                f"code is {len(code)} bytes; the limit is {self.config.max_code_bytes}"
                " ([plugins.runtime_v8] max_code_bytes)"
            )
        return await preparing.prepare(
            code,
            filename or "worker.js",
            node=self.config.node,
            jobs=BuildJobs.of(self.kernel),
            profile=profile,
        )

    # ---- warmfork hooks ---------------------------------------------------------

    def seed_payload(self, fv: FunctionVersion, seed_id: str) -> dict[str, Any]:
        init = base_init(fv, seed_id)
        if fv.profile.worker.warmup:  # seeds only: forks inherit what it compiled
            init["warmup"] = warmup.requests(fv.profile)
            init["warmup_budget_ms"] = fv.profile.worker.initialization_timeout
        return {"artifact": fv.artifact, "init": init}

    def instance_init(self, request: StartRequest) -> dict[str, Any]:
        return base_init(request.version, request.instance)

    def seed_blocker(self, profile: FunctionProfile) -> str | None:
        """Why instances of ``profile`` cannot be forks of a seed, or None.

        V8 flags are fixed when the engine starts, and every seed is a fork of the
        launcher's engine: a profile asking for ``worker.v8Options`` beyond the flags
        seeds run with would silently not get them, so its instances start cold."""
        if not profile.worker.v8_options:  # the common case, on every instance start
            return None
        seeded = {*BASE_FLAGS, *SEED_FLAGS, *self.config.all_flags()}
        extra = [flag for flag in profile.worker.v8_options if flag not in seeded]
        if not extra:
            return None
        return (
            f"worker.v8Options {' '.join(extra)} cannot apply to forks of a seed (V8 flags are "
            "fixed when the engine starts): its instances start cold"
        )

    # ---- cold start -------------------------------------------------------------

    def argv(self) -> list[str]:
        python = self.config.python or sys.executable
        return [python, "-m", "plugins.runtime_v8.worker", "--fd", str(CHANNEL_FD), "--init", f"fd:{INIT_FD}"]

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/nonexistent",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    async def start(self, request: StartRequest) -> Any:
        """Start a cold worker: ``python -m plugins.runtime_v8.worker`` (load + serve)."""
        init = base_init(request.version, request.instance)
        init["v8_options"] = [*self.config.all_flags(), *init["v8_options"]]
        init["artifact_b64"] = base64.b64encode(request.version.artifact).decode()
        payload = json.dumps(init).encode()
        rfd, wfd = os.pipe()
        try:
            launcher = getattr(self.kernel, "launcher", None)
            info = SpawnInfo(request.version.name, request.version.version, request.instance, request.role)
            if launcher is not None:
                proc = await launcher.spawn(
                    self.argv(),
                    self.env(),
                    pass_fds={CHANNEL_FD: request.channel_fd, INIT_FD: rfd},
                    sandbox=request.sandbox,
                    info=info,
                    cwd=str(REPO_ROOT),
                )
            else:
                proc = LocalProcess(await self._spawn_local(request.channel_fd, rfd))
        except BaseException:
            os.close(wfd)
            raise
        finally:
            os.close(rfd)
        try:
            async with trio.lowlevel.FdStream(wfd) as pipe:
                with trio.fail_after(30):
                    await pipe.send_all(payload)
        except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            proc.kill(signal.SIGKILL)
            raise StartError(
                f"could not hand the code to the worker of {request.version.name}: {exc}"
            ) from exc
        return proc

    async def _spawn_local(self, channel_fd: int, init_fd: int) -> trio.Process:
        """fork+exec without the launcher, mapping the fds to 3 and 4."""
        argv = self.argv()
        # trio has no fd remapping: pass the fds as they are and name them in argv
        argv[argv.index("--fd") + 1] = str(channel_fd)
        argv[argv.index("--init") + 1] = f"fd:{init_fd}"
        return await trio.lowlevel.open_process(
            argv,
            env=self.env(),
            pass_fds=(channel_fd, init_fd),
            cwd=str(REPO_ROOT),
            start_new_session=True,
        )
