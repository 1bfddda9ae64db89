"""Per-function entry files and V8 startup snapshots, cached by Node version and code.

The entry file is the worker host bundle (``js/dist/host.js``) followed by one call,
``__noslateHost.boot({kind, filename, code}, env)``. ``node --build-snapshot`` runs
it (the user's top-level code and ``install`` run then) and writes a blob; instances
start with ``node --snapshot-blob``. A blob is named by the SHA-256 of everything that
shapes it: Node version, host bundle, flags, artifact and env. A new Node binary or new
code gives a new name (a rebuild); old blobs are removed by :meth:`SnapshotCache.prune`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import attrs
import trio
from attrs import frozen

from kernel.artifact import parse
from kernel.buildjob import BuildJobs, BuildLimits, JobError
from kernel.errors import DeployError
from plugins.runtime_node.hostjs import HOST_BUNDLE
from plugins.runtime_node.node import CLEAN_ENV

LOAD_ERROR = "__NOSLATE_LOAD_ERROR__ "
WARMUP_REPORT = "__NOSLATE_WARMUP__ "
Warmup = tuple[list[dict[str, Any]], int] | tuple[()]
"""The warm-up of a build: (requests, budget in ms), or ``()`` for none."""


def warmup_report(stderr: str) -> list[dict[str, Any]] | None:
    """The build's warm-up outcome (warm.js writes one ``WARMUP_REPORT`` line)."""
    for line in stderr.splitlines():
        if line.startswith(WARMUP_REPORT):
            try:
                report = json.loads(line[len(WARMUP_REPORT) :])
            except ValueError:
                return None
            return report if isinstance(report, list) else None
    return None


def host_source() -> str:
    try:
        return HOST_BUNDLE.read_text()
    except FileNotFoundError:
        raise DeployError(
            f"the Node worker host {HOST_BUNDLE} is missing: run `sh plugins/runtime_node/js/build.sh`"
            " (the nodejs runtime builds it when it starts)"
        ) from None


def entry_source(artifact: bytes, env: dict[str, str], warmup: Warmup = ()) -> str:
    """The single bundled file ``--build-snapshot`` (or plain ``node``) runs.

    ``warmup``: requests (``kernel.warmup.requests``) the build sends the handler, one
    after another within ``budget_ms``, so its code is compiled in the snapshot.
    """
    art = parse(artifact)
    user = json.dumps({"kind": art.kind, "filename": art.filename, "code": art.code})
    requests, budget_ms = warmup if warmup else ([], 0)
    options = json.dumps({"warmup": requests, "warmupBudgetMs": budget_ms})
    return f"{host_source()}\n__noslateHost.boot({user}, {json.dumps(env)}, {options});\n"


def snapshot_key(
    node_version: str, flags: list[str], artifact: bytes, env: dict[str, str], warmup: Warmup = ()
) -> str:
    h = hashlib.sha256()
    warm = json.dumps(list(warmup)) if warmup else ""
    for part in (node_version, json.dumps(flags), json.dumps(env, sort_keys=True), warm):
        h.update(part.encode() + b"\0")
    h.update(host_digest())
    h.update(artifact)
    return h.hexdigest()


_HOST_DIGEST: dict[tuple[int, int], bytes] = {}


def host_digest() -> bytes:
    """SHA-256 of the host bundle, hashed again only when the file changes (every key
    and every prune of the cache needs it: one read and hash, not one per version)."""
    try:
        st = HOST_BUNDLE.stat()
    except FileNotFoundError:
        host_source()  # raises the DeployError that says how to build it
        raise
    stamp = (st.st_mtime_ns, st.st_size)
    digest = _HOST_DIGEST.get(stamp)
    if digest is None:
        _HOST_DIGEST.clear()
        digest = _HOST_DIGEST[stamp] = hashlib.sha256(host_source().encode()).digest()
    return digest


class SnapshotUnsupported(DeployError):
    """Node could not snapshot this code (not the user's error): start without a snapshot."""


@frozen
class BuildResult:
    path: Path
    built: bool
    """False when the blob came from the cache."""
    build_ms: float
    warmup: list[dict[str, Any]] | None = None
    """What the build's warm-up requests did (``kernel.warmup.describe``), when it ran."""


class SnapshotCache:
    """Blobs under ``root/<node version>/<key>.blob``; one build per key at a time."""

    def __init__(self, root: Path, jobs: BuildJobs | None = None) -> None:
        self.root = root
        self.jobs = jobs or BuildJobs(None)
        self._locks: dict[str, trio.Lock] = {}
        self.builds = 0
        self.hits = 0

    def path(self, node_version: str, key: str) -> Path:
        return self.root / node_version / f"{key}.blob"

    async def get(
        self,
        node: str,
        node_version: str,
        flags: list[str],
        artifact: bytes,
        env: dict[str, str],
        timeout: float,
        warmup: Warmup = (),
        profile: Any = None,
    ) -> BuildResult:
        """The blob for this code, building it when missing. Raises DeployError on a build failure."""
        key = snapshot_key(node_version, flags, artifact, env, warmup)
        path = self.path(node_version, key)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            if path.exists():
                self.hits += 1
                return BuildResult(path, False, 0.0)
            started = trio.current_time()
            memory = getattr(getattr(profile, "resource_limit", None), "memory", None)
            limits = self.jobs.limits(memory=memory, timeout=timeout)
            limits = attrs.evolve(
                limits, pids=getattr(getattr(profile, "resource_limit", None), "pids", None)
            )
            source = entry_source(artifact, env, warmup)
            stderr = await build(node, flags, source, path, jobs=self.jobs, profile=profile, limits=limits)
            self.builds += 1
            ms = (trio.current_time() - started) * 1000
            return BuildResult(path, True, ms, warmup_report(stderr) if warmup else None)

    def prune(self, node_version: str, keep: set[str]) -> int:
        """Delete blobs of other Node versions and of keys not in ``keep``; return how many."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for blob in self.root.glob("*/*.blob"):
            if blob.parent.name != node_version or blob.stem not in keep:
                blob.unlink(missing_ok=True)
                removed += 1
        return removed


def wrap_entry(entry: str) -> str:
    """``entry`` compiled under the name ``noslate:runtime``: no host path in any stack trace."""
    body = json.dumps("(function (require) {" + entry + "\n})")
    return f'require("node:vm").runInThisContext({body}, {{ filename: "noslate:runtime" }})(require);\n'


ENTRY_FD, BLOB_FD = 5, 6


async def build(
    node: str,
    flags: list[str],
    entry: str,
    dest: Path,
    *,
    jobs: BuildJobs,
    profile: Any = None,
    limits: BuildLimits,
) -> str:
    """Run ``node --build-snapshot`` on ``entry`` as a sandboxed job; write the blob to
    ``dest``; return the build's stderr (its warm-up report, console output).

    The build runs the tenant's top-level code, so it gets the function's own sandbox
    (user, seccomp, namespaces, a cgroup with the profile's memory limit) through
    :class:`kernel.buildjob.BuildJobs`. The entry and the blob are anonymous files
    (``memfd``) passed as descriptors: the job sees no host path, and the blob's size is
    bounded by the job's memory (its pages are charged to the job's cgroup) and by
    ``RLIMIT_FSIZE``.
    """
    entry_fd = _memfd("noslate-entry", wrap_entry(entry).encode())
    blob_fd = os.memfd_create("noslate-blob", 0)
    try:
        argv = [
            node,
            "--no-warnings",
            *flags,
            "--snapshot-blob",
            f"/proc/self/fd/{BLOB_FD}",
            "--build-snapshot",
            f"/proc/self/fd/{ENTRY_FD}",
        ]
        try:
            proc = await jobs.run(
                argv,
                env=CLEAN_ENV,
                profile=profile,
                purpose="snapshot",
                limits=limits,
                pass_fds={ENTRY_FD: entry_fd, BLOB_FD: blob_fd},
                what="building the startup snapshot (the function's top-level code)",
            )
        except JobError as exc:
            if "longer than" in str(exc):
                raise DeployError(
                    f"{exc}: the function's top-level code must finish quickly "
                    "([plugins.runtime_node] build_timeout)"
                ) from None
            raise
        size = os.fstat(blob_fd).st_size
        if proc.returncode != 0 or size == 0:
            raise build_error(proc.stderr.decode(errors="replace"), proc.returncode)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".blob-", delete=False) as out:
            os.lseek(blob_fd, 0, os.SEEK_SET)
            while chunk := os.read(blob_fd, 1 << 20):
                out.write(chunk)
        # instances reopen it through /proc/self/fd as the worker user; the state
        # directory above it is what keeps other users out
        os.chmod(out.name, 0o644)
        os.replace(out.name, dest)
        return proc.stderr.decode(errors="replace")
    finally:
        os.close(entry_fd)
        os.close(blob_fd)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def build_error(stderr: str, code: int | None) -> DeployError:
    """The user's load error from a failed build, or the tail of Node's output."""
    for line in stderr.splitlines():
        if line.startswith(LOAD_ERROR):
            data: dict[str, Any] = json.loads(line[len(LOAD_ERROR) :])
            return DeployError(data["message"], data.get("where", ""))
    tail = " | ".join(line for line in stderr.strip().splitlines()[-6:] if line.strip())
    return SnapshotUnsupported(f"building the startup snapshot failed (exit {code}): {tail or 'no output'}")
