"""The ``[plugins.isolation_cgroup]`` config section."""

from __future__ import annotations

from attrs import field, frozen
from attrs.validators import ge, in_, matches_re


@frozen
class CgroupConfig:
    """Where the daemon's cgroups live and how processes join them."""

    enabled: bool = True
    """Turn the plugin off (also possible through ``[plugins] disabled``)."""
    required: bool = True
    """Refuse to start when cgroups are unusable; ``false`` only warns (loudly)."""
    root: str = field(default="noslate", validator=matches_re(r"^[A-Za-z0-9_.-]{1,64}$"))
    """Name of the cgroup holding every daemon's cgroups (one ``daemon-<pid>-<start>`` each)."""
    parent: str = ""
    """Absolute cgroup path to create ``root`` under; empty = the daemon's own cgroup."""
    version: str = field(default="auto", validator=in_(("auto", "v1", "v2")))
    """Which backend: ``auto`` picks v2 when it holds memory, cpu and pids, else v1."""
    join: str = field(default="child", validator=in_(("child", "launcher")))
    """Who moves a new process into its cgroup: ``child`` (the process itself, before
    user code, in the ``apply`` step) or ``launcher`` (by pid right after the fork)."""
    cpu_period_us: int = field(default=100_000, validator=ge(1000))
    """CFS period; ``resourceLimit.cpu`` x period = quota."""
    seed_extra_pids: int = field(default=256, validator=ge(0))
    """Added to a seed's pids limit: instances are forked inside the seed's cgroup
    before they move to their own."""
    clean_stale: bool = True
    """Remove cgroups (and kill processes) left by daemons that are gone, at start-up."""
    reuse: bool = True
    """Park an exited instance's (empty) cgroup and hand it to the function's next
    process instead of removing it and creating a new one (saves milliseconds per
    instance; see docs/isolation-cgroup.md, "Reuse")."""
    pool_max_idle: int = field(default=16, validator=ge(0))
    """Parked cgroups kept per function at most; the oldest beyond it are removed."""
    pool_idle_seconds: float = field(default=30.0, validator=ge(0))
    """A parked cgroup unused this long is removed (and the function's cgroup with the last)."""
