"""Deploy-time work (esbuild, Node snapshot builds) as untrusted, sandboxed processes.

Everything a deploy runs on tenant input goes through :meth:`BuildJobs.run`:

- the process gets the same sandbox an instance of the function gets (isolation
  plugins contribute to it with ``role="build"``: unprivileged user, seccomp,
  namespaces and a private root, its own cgroup), started by the launcher, so it
  dies with the daemon (parent-death signal), even after ``kill -9``;
- limits on top: memory (cgroup), pids, CPU time (``RLIMIT_CPU``), the size of any
  file it writes (``RLIMIT_FSIZE``), the bytes it may print, and a wall-clock deadline.

Without a launcher (tests of a runtime alone) the job runs as a plain child process
with a clean environment and the same output limit and deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import trio
from attrs import frozen

from kernel.config import DeployConfig
from kernel.errors import DeployError
from kernel.interfaces import SpawnInfo
from kernel.sandbox import Mount, Rlimit, Sandbox, contributed

ROLE = "build"


@frozen
class BuildLimits:
    """Limits of one deploy-time job."""

    memory: int
    """Bytes of memory (cgroup limit of the job's own cgroup)."""
    timeout: float
    """Wall-clock seconds; the job is killed after that."""
    max_output: int = 64 * 1024 * 1024
    """Bytes the job may write to stdout (and, separately, stderr)."""
    max_file: int = 256 * 1024 * 1024
    """Largest file the job may write (``RLIMIT_FSIZE``)."""
    pids: int | None = 128
    """Tasks (processes and threads) in the job's cgroup; None keeps the profile's."""


@frozen
class JobResult:
    """How a job ended and what it printed."""

    returncode: int
    stdout: bytes
    stderr: bytes
    cause: str | None = None
    """What an isolation layer says ended it (``"oom"``), else None."""


class JobError(DeployError):
    """A deploy-time job broke a limit (time, output, memory)."""


class BuildJobs:
    """Runs deploy-time jobs for ``kernel`` (its launcher, hooks and isolation plugins)."""

    @classmethod
    def of(cls, kernel: Any) -> BuildJobs:
        """The kernel's job runner (``kernel.jobs``), or one for a kernel without it."""
        jobs = getattr(kernel, "jobs", None)
        return jobs if isinstance(jobs, BuildJobs) else cls(kernel)

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.running = 0
        self.started = 0

    def limits(self, memory: int | None = None, timeout: float | None = None) -> BuildLimits:
        """Limits from the kernel's ``[deploy]`` config; ``memory`` (e.g. the profile's) overrides."""
        deploy = getattr(getattr(self.kernel, "config", None), "deploy", None) or DeployConfig()
        return BuildLimits(
            memory=memory or deploy.build_memory,
            timeout=timeout or deploy.build_timeout,
            max_output=deploy.build_max_output,
            pids=deploy.build_pids,
        )

    def sandbox(self, profile: Any, purpose: str, limits: BuildLimits, ro_paths: Sequence[str]) -> Sandbox:
        """The job's sandbox: what an instance of ``profile`` gets, plus the job's limits."""
        name = getattr(profile, "name", "") or "deploy"
        sandbox = contributed(
            getattr(self.kernel, "hooks", None),
            profile,
            ROLE,
            f"noslate:{name}:{purpose}",
            {"noslate.function": name, "noslate.role": ROLE, "noslate.purpose": purpose},
        )
        res = sandbox.linux.resources
        if res.memory_limit is not None or res.pids_limit is not None:  # a cgroup is in force
            res.memory_limit = limits.memory
            if limits.pids is not None:
                res.pids_limit = limits.pids
        cpu_seconds = max(1, int(limits.timeout) + 1)
        ours = {"RLIMIT_CPU": cpu_seconds, "RLIMIT_FSIZE": limits.max_file, "RLIMIT_CORE": 0}
        sandbox.process.rlimits = [r for r in sandbox.process.rlimits if r.type not in ours] + [
            Rlimit(type=k, soft=v, hard=v) for k, v in ours.items()
        ]
        if sandbox.root is not None:  # a private root: make the job's own programs visible
            have = {m.destination for m in sandbox.mounts}
            for path in ro_paths:
                real = os.path.realpath(path)
                if real not in have and os.path.exists(real):
                    sandbox.mounts.append(Mount(real, real, "bind", ["rbind", "ro", "nosuid", "nodev"]))
            sandbox.mounts.sort(key=lambda m: m.destination.rstrip("/").count("/"))
        return sandbox

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdin: bytes = b"",
        profile: Any = None,
        purpose: str = "build",
        limits: BuildLimits,
        pass_fds: Mapping[int, int] | None = None,
        ro_paths: Sequence[str] = (),
        what: str = "the build",
    ) -> JobResult:
        """Run ``argv`` sandboxed; raise :class:`JobError` when it breaks a limit."""
        launcher = getattr(self.kernel, "launcher", None)
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        child_fds = {0: in_r, 1: out_w, 2: err_w, **(pass_fds or {})}
        self.running += 1
        self.started += 1
        proc: Any = None
        try:
            try:
                if launcher is not None and not getattr(launcher, "closed", False):
                    sandbox = self.sandbox(profile, purpose, limits, ro_paths)
                    info = SpawnInfo(getattr(profile, "name", "") or "deploy", "", purpose, ROLE)
                    proc = await launcher.spawn(
                        argv, env, pass_fds=child_fds, sandbox=sandbox, info=info, cwd="/"
                    )
                else:
                    proc = await _plain_spawn(argv, env, child_fds)
            finally:
                for fd in (in_r, out_w, err_w):
                    os.close(fd)
            result = await self._collect(proc, stdin, in_w, out_r, err_r, limits, what)
            in_w = out_r = err_r = -1
            return result
        finally:
            self.running -= 1
            for fd in (in_w, out_r, err_r):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            if proc is not None and _alive(proc):
                _kill(proc)

    async def _collect(
        self, proc: Any, stdin: bytes, in_w: int, out_r: int, err_r: int, limits: BuildLimits, what: str
    ) -> JobResult:
        out = bytearray()
        err = bytearray()
        over: list[str] = []

        async def feed(stream: trio.lowlevel.FdStream) -> None:
            async with stream:
                with contextlib.suppress(trio.BrokenResourceError, OSError):
                    for i in range(0, len(stdin), 65536):
                        await stream.send_all(stdin[i : i + 65536])

        async def drain(stream: trio.lowlevel.FdStream, into: bytearray, name: str) -> None:
            async with stream:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    if len(into) + len(data) > limits.max_output:
                        over.append(name)
                        _kill(proc)
                        return
                    into += data

        try:
            with trio.fail_after(limits.timeout):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(feed, trio.lowlevel.FdStream(in_w))
                    nursery.start_soon(drain, trio.lowlevel.FdStream(out_r), out, "output")
                    nursery.start_soon(drain, trio.lowlevel.FdStream(err_r), err, "error output")
                code = await proc.wait()
        except trio.TooSlowError:
            _kill(proc)
            with trio.move_on_after(5):
                await proc.wait()
            raise JobError(f"{what} took longer than {limits.timeout:g} s and was stopped") from None
        cause = getattr(proc, "cause", None)
        if over:
            raise JobError(f"{what} wrote more than {limits.max_output} bytes of {over[0]} and was stopped")
        if cause == "oom":
            raise JobError(f"{what} ran out of memory (limit {limits.memory} bytes) and was stopped")
        if code == -signal.SIGXCPU:
            raise JobError(f"{what} used more than {int(limits.timeout) + 1} s of CPU time and was stopped")
        if code == -signal.SIGXFSZ:
            raise JobError(f"{what} wrote a file larger than {limits.max_file} bytes and was stopped")
        return JobResult(code, bytes(out), bytes(err), cause)


def _alive(proc: Any) -> bool:
    alive = getattr(proc, "alive", None)
    return bool(alive) if alive is not None else getattr(proc, "returncode", None) is None


def _kill(proc: Any) -> None:
    with contextlib.suppress(ProcessLookupError, OSError):
        proc.kill(signal.SIGKILL)


class _Plain:
    """A plain child process with the launcher's WorkerProcess surface (wait, kill, alive)."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.cause: str | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def wait(self) -> int:
        return await self.process.wait()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)


async def _plain_spawn(argv: Sequence[str], env: Mapping[str, str], fds: Mapping[int, int]) -> _Plain:
    extra = {k: v for k, v in fds.items() if k > 2}
    command = list(argv)
    if any(k != v for k, v in extra.items()):  # renumber in the child, then exec
        moves = repr(sorted(extra.items()))
        shim = f"import os,sys\nfor t,s in {moves}: os.dup2(s,t)\nos.execv(sys.argv[1],sys.argv[1:])"
        command = [sys.executable, "-S", "-c", shim, *command]
    process = await trio.lowlevel.open_process(
        command,
        env=dict(env),
        stdin=fds[0],
        stdout=fds[1],
        stderr=fds[2],
        pass_fds=tuple(sorted(set(extra.values()))),
        cwd="/",
        start_new_session=True,
    )
    return _Plain(process)
