"""The daemon side: namespaces, root and mounts of a worker's OCI-shaped sandbox."""

from __future__ import annotations

import os
import sys
from typing import Any

from kernel.sandbox import Mount, Namespace, Root, Sandbox

ANN_LOOPBACK = "noslate.netns.loopback"
DEVICES = ("null", "zero", "full", "random", "urandom")
RO = ["rbind", "ro", "nosuid", "nodev"]


def runtime_paths() -> list[str]:
    """The interpreter, its standard library, the virtualenv and the project's packages."""
    import kernel
    import plugins

    paths = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    for pkg in (kernel, plugins):
        paths.append(os.path.dirname(os.path.realpath(pkg.__file__ or "")))
    return paths


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def bind_sources(cfg: Any) -> list[str]:
    """Host paths to bind read-only, parents first, without ones a parent covers."""
    out: list[str] = []
    for path in sorted({*cfg.host_paths, *runtime_paths(), *cfg.extra_paths}, key=len):
        if os.path.lexists(path) and not _covered(path, out):
            out.append(path)
    return out


def contribute(sandbox: Sandbox, cfg: Any, state_dir: str | None) -> None:
    """Set linux.namespaces, root, mounts, hostname and masked paths."""
    sandbox.linux.namespaces = [Namespace(type=t) for t in cfg.namespaces]
    if "uts" in cfg.namespaces:
        sandbox.hostname = cfg.hostname
    if "network" in cfg.namespaces:
        sandbox.annotations[ANN_LOOPBACK] = cfg.loopback
    if not (cfg.rootfs and "mount" in cfg.namespaces):
        return
    sandbox.root = Root(path=cfg.root_dir, readonly=True)
    sources = bind_sources(cfg)
    mounts = [Mount(destination=p, source=p, type="bind", options=list(RO)) for p in sources]
    mounts.append(Mount("/proc", "proc", "proc", ["nosuid", "nodev", "noexec"]))
    mounts.append(Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "noexec", "mode=755", "size=65536"]))
    mounts += [Mount(f"/dev/{d}", f"/dev/{d}", "bind", ["bind", "nosuid", "noexec"]) for d in DEVICES]
    mounts.append(Mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777", f"size={cfg.tmp_size}"]))
    # Parents before children: a bind under /tmp (a project checked out there) must land
    # on the private /tmp, not be hidden by it. The sort is stable, so order is kept otherwise.
    sandbox.mounts = sorted(mounts, key=lambda m: m.destination.rstrip("/").count("/"))
    if state_dir:
        state = os.path.realpath(state_dir)
        if _covered(state, sources):
            sandbox.linux.maskedPaths = [*sandbox.linux.maskedPaths, state]
