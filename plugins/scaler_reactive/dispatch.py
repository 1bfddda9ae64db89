"""Dispatch strategies: which instance with free capacity gets the next request."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.interfaces import DispatchStrategy, InstanceHandle


def least_request_count(candidates: Sequence[InstanceHandle]) -> InstanceHandle | None:
    """The instance with the fewest requests in flight; ties go to the earliest listed.

    The scheduler lists instances oldest first, so ties load older instances and let
    newer ones go idle (which is what shrinking wants).
    """
    best: InstanceHandle | None = None
    for inst in candidates:
        if best is None or inst.active < best.active:
            best = inst
    return best


class RoundRobin:
    """Cycles through a function's instances with free capacity, one per request."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def __call__(self, candidates: Sequence[InstanceHandle]) -> InstanceHandle | None:
        if not candidates:
            return None
        key = candidates[0].function
        n = self._counters.get(key, 0)
        self._counters[key] = n + 1
        return candidates[n % len(candidates)]


def strategies() -> list[DispatchStrategy]:
    """The built-in strategies, named as the profile's ``worker.dispatchMode`` values."""
    return [
        DispatchStrategy(name="least-request-count", choose=least_request_count),
        DispatchStrategy(name="round-robin", choose=RoundRobin()),
    ]
