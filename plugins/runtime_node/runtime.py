"""The ``nodejs`` runtime object: deploy-time ``prepare`` (+ snapshot build) and cold ``start``.

Node cannot be forked, so every instance is a fresh ``node`` process started through
the launcher's ``spawn`` with the sandbox applied; a per-function startup snapshot
makes that start fast. Descriptors in the worker: 3 = the kernel channel, 4 = init
JSON (a pipe), 5 = the snapshot blob or the entry file (read through /proc/self/fd, so
the state directory never needs to be visible inside a sandbox).
"""

from __future__ import annotations

import json
import logging
import os
import signal
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
from plugins.runtime_node import hostjs
from plugins.runtime_node.config import RuntimeNodeConfig
from plugins.runtime_node.node import CLEAN_ENV, find_node, node_version
from plugins.runtime_node.snapshot import (
    SnapshotCache,
    SnapshotUnsupported,
    Warmup,
    entry_source,
    snapshot_key,
)

NAME = "nodejs"
CHANNEL_FD, INIT_FD, CODE_FD = 3, 4, 5
LOADER = Path(__file__).parent / "js" / "loader.cjs"
log = logging.getLogger("noslate.runtime_node")


def check_profile(profile: FunctionProfile | None) -> None:
    """Reject Noslate's Node handler form, which this runtime does not run."""
    if profile is None:
        return
    for field in ("handler", "initializer"):
        if getattr(profile, field, ""):
            raise DeployError(
                f"profile field `{field}` ({getattr(profile, field)!r}) is Noslate's Node.js handler form, "
                "which the nodejs runtime does not support: remove it and write the worker as a service "
                "worker (addEventListener('fetch', ...)) or an ES module (export default { fetch })"
            )


class NodeRuntime:
    """Runs functions in Node.js worker processes (``js/dist/host.js``)."""

    name = NAME

    def __init__(self, kernel: Any, config: RuntimeNodeConfig | None = None) -> None:
        self.kernel = kernel
        self.config = config or RuntimeNodeConfig()
        self.node = find_node(self.config.node)
        self.node_version = node_version(self.node)
        hostjs.ensure()  # the worker host bundle (a build output), rebuilt when stale
        state_dir = getattr(kernel, "state_dir", None)
        root = (
            Path(self.config.cache_dir)
            if self.config.cache_dir
            else Path(state_dir or "/tmp") / "runtime_node"
        )
        self.snapshots = SnapshotCache(root / "snapshots", BuildJobs.of(kernel))
        self._unsupported: set[bytes] = set()

    # ---- deploy -----------------------------------------------------------------

    def flags(self, profile: FunctionProfile) -> list[str]:
        return [*self.config.node_flags, *profile.worker.exec_argv, *profile.worker.v8_options]

    async def prepare(self, code: bytes, filename: str, profile: FunctionProfile | None = None) -> bytes:
        """Check/bundle the code and build its startup snapshot; a failure fails the deploy."""
        check_profile(profile)
        if len(code) > self.config.max_code_bytes:
            raise DeployError(
                f"code is {len(code)} bytes; the limit is {self.config.max_code_bytes}"
                " ([plugins.runtime_node] max_code_bytes)"
            )
        artifact = await preparing.prepare(
            code,
            filename or "worker.js",
            node=self.node,
            env=CLEAN_ENV,
            jobs=BuildJobs.of(self.kernel),
            profile=profile,
        )
        if profile is not None and self.config.snapshot:
            await self.blob(artifact, profile)
        return artifact

    async def blob(self, artifact: bytes, profile: FunctionProfile) -> Path | None:
        """The snapshot blob for this code (built or from the cache), None if Node cannot snapshot it."""
        if artifact in self._unsupported:
            return None
        try:
            result = await self.snapshots.get(
                self.node,
                self.node_version,
                self.flags(profile),
                artifact,
                profile.env,
                self.config.build_timeout,
                self.warmup(profile),
                profile=profile,
            )
        except SnapshotUnsupported as exc:
            self._unsupported.add(artifact)
            self._log(profile.name, "warning", f"no startup snapshot, instances start slower: {exc}")
            return None
        if result.built:
            self._log(profile.name, "info", f"built the startup snapshot in {result.build_ms:.0f} ms")
        if result.warmup:
            text = f"warm-up in the snapshot build: {warmup.describe(result.warmup)}"
            level = "warning" if any(map(warmup.failed, result.warmup)) else "info"
            self._log(profile.name, level, text)
        return result.path

    def warmup(self, profile: FunctionProfile) -> Warmup:
        """The build's warm-up: the profile's ``worker.warmup``, else the deprecated
        ``[plugins.runtime_node] warmup_path`` (one GET), else none."""
        budget = profile.worker.initialization_timeout
        if profile.worker.warmup:
            return (warmup.requests(profile), budget)
        if self.config.warmup_path:
            path = "/" + self.config.warmup_path.lstrip("/")
            return ([warmup.request(path, headers=[("accept", "*/*")])], budget)
        return ()

    def retain(self, versions: list[FunctionVersion]) -> int:
        """Delete snapshot blobs no version in ``versions`` (current or being deployed) uses."""
        keep = {
            snapshot_key(
                self.node_version,
                self.flags(fv.profile),
                fv.artifact,
                fv.profile.env,
                self.warmup(fv.profile),
            )
            for fv in versions
            if fv.profile.runtime == NAME
        }
        removed = self.snapshots.prune(self.node_version, keep)
        if removed:
            log.info("removed %d snapshot blob(s) of removed or superseded versions", removed)
        return removed

    def _log(self, function: str, level: str, message: str) -> None:
        logger = getattr(self.kernel, "log", None)
        if callable(logger):
            logger(function, level, message)
        else:
            log.info("[%s] %s", function, message)

    # ---- start ------------------------------------------------------------------

    def argv(self, profile: FunctionProfile, snapshot: bool, fds: tuple[int, int, int]) -> list[str]:
        chan, init, code = fds
        tail = ["--fd", str(chan), "--init", f"fd:{init}"]
        if snapshot:
            return [
                self.node,
                *self.flags(profile),
                "--snapshot-blob",
                f"/proc/self/fd/{code}",
                "noslate-worker",
                *tail,
            ]
        return [self.node, *self.flags(profile), str(LOADER), str(code), *tail]

    def init(self, fv: FunctionVersion, instance: str) -> dict[str, Any]:
        p = fv.profile
        return {"function": p.name, "version": fv.version, "instance": instance}

    async def start(self, request: StartRequest, *, snapshot: bool | None = None) -> Any:
        """Start one instance: ``node --snapshot-blob`` (or the entry file) under the sandbox."""
        fv = request.version
        profile = fv.profile
        blob = (
            await self._blob_for_start(fv)
            if (self.config.snapshot if snapshot is None else snapshot)
            else None
        )
        if blob is not None:
            code_fd = os.open(blob, os.O_RDONLY | os.O_CLOEXEC)
        else:
            code_fd = _memfd(entry_source(fv.artifact, profile.env).encode())
        rfd, wfd = os.pipe()
        try:
            launcher = getattr(self.kernel, "launcher", None)
            if launcher is not None:
                info = SpawnInfo(fv.name, fv.version, request.instance, request.role)
                proc = await launcher.spawn(
                    self.argv(profile, blob is not None, (CHANNEL_FD, INIT_FD, CODE_FD)),
                    CLEAN_ENV,
                    pass_fds={CHANNEL_FD: request.channel_fd, INIT_FD: rfd, CODE_FD: code_fd},
                    sandbox=request.sandbox,
                    info=info,
                    cwd="/",
                )
            else:
                argv = self.argv(profile, blob is not None, (request.channel_fd, rfd, code_fd))
                proc = LocalProcess(
                    await trio.lowlevel.open_process(
                        argv,
                        env=CLEAN_ENV,
                        pass_fds=(request.channel_fd, rfd, code_fd),
                        cwd="/",
                        start_new_session=True,
                    )
                )
        except BaseException:
            os.close(wfd)
            raise
        finally:
            os.close(rfd)
            os.close(code_fd)
        try:
            async with trio.lowlevel.FdStream(wfd) as pipe:
                with trio.fail_after(30):
                    await pipe.send_all(json.dumps(self.init(fv, request.instance)).encode())
        except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            proc.kill(signal.SIGKILL)
            raise StartError(f"could not hand the init data to the Node worker of {fv.name}: {exc}") from exc
        return proc

    async def _blob_for_start(self, fv: FunctionVersion) -> Path | None:
        try:
            return await self.blob(fv.artifact, fv.profile)
        except DeployError as exc:
            raise StartError(f"the startup snapshot of {fv.name} cannot be built: {exc}", fatal=True) from exc


def _memfd(data: bytes) -> int:
    """An anonymous file holding ``data`` (no path on any file system)."""
    fd = os.memfd_create("noslate-entry", os.MFD_CLOEXEC)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
