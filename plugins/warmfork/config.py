"""``[plugins.warmfork]``: seed lifecycle settings."""

from __future__ import annotations

from attrs import field, frozen


def _non_negative(_i: object, a: object, value: float) -> None:
    if value < 0:
        raise ValueError(f"{a.name} must be >= 0, got {value}")  # type: ignore[attr-defined]


MAX_SPARES = 8


def _spares(_i: object, a: object, value: int) -> None:
    if not 0 <= value <= MAX_SPARES:
        raise ValueError(f"{a.name} must be 0 to {MAX_SPARES}, got {value}")  # type: ignore[attr-defined]


@frozen
class WarmforkConfig:
    """How seeds are created, kept and reclaimed."""

    seed_idle_timeout: float = field(default=300.0, validator=_non_negative)
    """Seconds a seed with no live instances and no forks is kept; 0 = keep forever."""
    spares: int = field(default=0, validator=_spares)
    """Pre-forked spare instances per function version (0-8): fork and cgroup attach
    happen before the request instead of on its path."""
    disposable_spares: int = field(default=2, validator=_spares)
    """Spares kept (at least) for a function with ``worker.disposable``, whose every
    request needs a new instance; refilled in the background as they are taken."""
    refill_delay: float = field(default=0.02, validator=_non_negative)
    """Seconds a seed must go without starting an instance before a spare is forked:
    the fork and the spare's warm-up (~5 ms of CPU here) then do not compete with the
    requests new instances serve, and under sustained load no spare is made only to be
    taken at once; 0 = refill at once."""
    prepare_at_deploy: bool = True
    """Start the seed when a version is deployed (init errors fail the deploy)."""
    restart_backoff: float = field(default=0.5, validator=_non_negative)
    """Seconds before the first restart of a crashed seed (doubles per crash)."""
    restart_backoff_max: float = field(default=30.0, validator=_non_negative)
    seed_start_timeout: float = field(default=60.0, validator=_non_negative)
    """Seconds a seed may take to load the function's code."""
    fork_timeout: float = field(default=10.0, validator=_non_negative)
    """Seconds a fork (and its cgroup attach) may take."""
