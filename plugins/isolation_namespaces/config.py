"""The ``[plugins.isolation_namespaces]`` config section."""

from __future__ import annotations

import os
from typing import Any

from attrs import field, frozen, validators

from plugins.isolation_namespaces.linux import NS_FLAGS

MiB = 1024 * 1024


def _namespaces(_i: Any, a: Any, value: list[str]) -> None:
    bad = [v for v in value if v not in NS_FLAGS]
    if bad:
        raise ValueError(f"unknown namespace(s) {', '.join(bad)}; choose from {', '.join(NS_FLAGS)}")
    if "pid" in value and "mount" not in value:
        raise ValueError("a pid namespace needs the mount namespace too (to mount its /proc)")


def _absolute(_i: Any, a: Any, value: Any) -> None:
    paths = [value] if isinstance(value, str) else value
    bad = [p for p in paths if not os.path.isabs(p)]
    if bad:
        raise ValueError(f"{a.name} needs absolute paths, got {', '.join(map(repr, bad))}")


@frozen(kw_only=True)
class NamespacesConfig:
    """Linux namespaces and the read-only root file system of worker processes."""

    required: bool = True
    """Fail start-up when enabled but unusable (False: warn loudly and run without)."""
    namespaces: list[str] = field(
        factory=lambda: ["mount", "pid", "network", "ipc", "uts"], validator=_namespaces
    )
    """Namespaces each seed (or cold worker) gets; its instances share them."""
    rootfs: bool = True
    """pivot_root into a minimal read-only root (needs the mount namespace)."""
    root_dir: str = field(default="/run/noslate/rootfs", validator=_absolute)
    """Empty host directory the root is assembled on (inside the private mount namespace)."""
    host_paths: list[str] = field(
        factory=lambda: ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime"],
        validator=_absolute,
    )
    """Host paths bind-mounted read-only at the same place (symlinks are re-created).
    The interpreter, the virtualenv and the project's code are added automatically."""
    extra_paths: list[str] = field(factory=list, validator=_absolute)
    """More read-only bind mounts (e.g. a Node installation)."""
    tmp_size: int = field(default=16 * MiB, validator=validators.gt(0))
    """Size cap of the private /tmp (tmpfs), bytes."""
    hostname: str = "noslate"
    """Host name inside the uts namespace."""
    loopback: str = field(default="down", validator=validators.in_(["down", "up"]))
    """State of ``lo``, the only interface of the network namespace."""
