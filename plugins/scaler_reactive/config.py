"""The ``[plugins.scaler_reactive]`` config section."""

from __future__ import annotations

import os
from typing import Any

import attrs
from attrs import field, frozen


def _positive(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value}")


def _non_negative(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


def _share(_i: Any, a: Any, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{a.name} must be in (0, 1]; got {value}")


@frozen
class BreakerConfig:
    """The global circuit breaker (Noslate's defaults)."""

    enabled: bool = True
    """Turn the breaker off entirely."""
    check_interval: float = field(default=1.0, validator=_positive)
    """Seconds between health checks."""
    max_active_pending: int = field(default=10000, validator=_positive)
    """Unhealthy above this many active plus queued requests (all functions)."""
    max_pending: int = field(default=1000, validator=_positive)
    """Unhealthy above this many queued requests (all functions)."""
    max_load: float | None = field(default=None, validator=attrs.validators.optional(_positive))
    """Unhealthy above this 1-minute load average; None (default) = not checked.

    Noslate checks 10. The load average is machine-wide, so on a shared host a busy
    neighbour would make the daemon refuse all traffic: set it when the daemon owns
    the host (e.g. ``max_load = 10.0`` on a dedicated 2-core machine).
    """
    open_after: int = field(default=5, validator=_positive)
    """Consecutive unhealthy checks that open the breaker."""
    close_after: int = field(default=3, validator=_positive)
    """Consecutive healthy checks that close it again."""


@frozen
class ScalerConfig:
    """Queueing, scaling and admission settings of the reactive scheduler."""

    queue_timeout: float = field(default=10.0, validator=_positive)
    """Seconds a request may wait in its function's queue before a 503."""
    max_queue_length: int = field(default=1000, validator=_positive)
    """Queued requests per function; more are rejected with 503 ``queue_full``."""
    policy: str = "water-level"
    """Scaling policy by name: ``water-level``, ``ema``, ``keepalive`` (or a plugin's)."""
    policy_options: dict[str, float] = field(factory=dict)
    """Keyword arguments for the policy's factory (see docs/scaling.md)."""
    memory_pool: int = field(default=0, validator=_non_negative)
    """Bytes: the sum of instance memory limits (``resourceLimit.memory``) allowed.

    0 (the default) means 75% of the host's MemTotal, at least 1 GiB (see
    :func:`default_memory_pool`)."""
    function_memory_share: float = field(default=0.25, validator=_share)
    """The fraction of the memory pool one function's instances may hold together, so
    one function cannot take the pool from all others (a function may always have
    one instance, whatever its size); 1.0 turns the share off."""
    drain_timeout: float = field(default=30.0, validator=_non_negative)
    """Seconds a stopping instance may take to finish in-flight requests."""
    start_retry_backoff: float = field(default=0.5, validator=_positive)
    """Seconds before retrying after a non-fatal start failure (doubles, max 8x)."""
    reclaim_idle: bool = True
    """When the memory pool is full, stop idle instances of other functions."""
    retry_after: float = field(default=1.0, validator=_positive)
    """Retry-After seconds sent with queue rejections (503)."""
    breaker: BreakerConfig = field(factory=BreakerConfig)


POOL_FRACTION = 0.75
"""Share of MemTotal the automatic memory pool allows."""


def default_memory_pool(
    meminfo: str = "/proc/meminfo",
    cgroup: str = "/proc/self/cgroup",
    cgroup_root: str = "/sys/fs/cgroup",
    environ: dict[str, str] | None = None,
) -> int:
    """75% of the memory this daemon may use, at least 1 GiB (1 GiB when nothing can be
    read): the smallest of the host's MemTotal, the limit of the daemon's own memory
    cgroup (a container's, e.g. a Kubernetes pod's limit) and ``NOSLATE_MEMORY_LIMIT``
    (bytes; the downward API's ``resources.limits.memory``)."""
    floor = 1 << 30
    sizes = [n for n in (_memtotal(meminfo), _cgroup_limit(cgroup, cgroup_root)) if n]
    env = (os.environ if environ is None else environ).get("NOSLATE_MEMORY_LIMIT", "")
    if env.isdigit() and int(env) > 0:
        sizes.append(int(env))
    return max(floor, int(min(sizes) * POOL_FRACTION)) if sizes else floor


def _memtotal(meminfo: str) -> int | None:
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_limit(cgroup: str, root: str) -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max`` or v1
    ``memory.limit_in_bytes``), None when unlimited or unreadable."""
    try:
        with open(cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        path = path.lstrip("/")
        if controllers == "":
            candidates.append(os.path.join(root, path, "memory.max"))
        elif "memory" in controllers.split(","):
            candidates.append(os.path.join(root, "memory", path, "memory.limit_in_bytes"))
    for file in candidates:
        try:
            with open(file) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):  # v1 says "unlimited" with a huge number
            return int(text)
    return None


def section(config: Any) -> ScalerConfig:
    """This plugin's section from the kernel config (defaults when absent)."""
    if config is None:
        return ScalerConfig()
    getter = getattr(config, "plugin_section", None)
    value = getter("scaler_reactive") if getter else None
    if isinstance(value, ScalerConfig):
        return value
    if isinstance(value, dict):
        from kernel.structure import structure

        return structure(value, ScalerConfig, "[plugins.scaler_reactive]")
    return ScalerConfig()
