"""Scaling policies: how many instances a function should gain or lose.

A policy object exists per function. The scheduler calls ``observe(now, concurrency)``
whenever the function's concurrency (requests in flight plus queued) changes, and
``evaluate(sample)`` every ``interval`` seconds; ``evaluate`` returns the number of
instances to add (> 0) or remove (< 0). The scheduler clamps the answer to
``replicaCountLimit``, ``reservationCount`` and the memory pool, and picks shrink
victims with the profile's ``shrinkStrategy``. Queued requests start instances on
their own (Noslate's queue rule), whatever the policy says.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Protocol

from attrs import frozen

from kernel.interfaces import ScalingPolicySpec


@frozen
class Sample:
    """A function's state at one evaluation."""

    now: float
    active: int
    """Requests in flight on the current version's accepting instances."""
    queued: int
    instances: int
    """Ready, accepting instances of the current version."""
    starting: int
    max_activate_requests: int
    reservation_count: int
    replica_count_limit: int
    idle_for: tuple[float, ...] = ()
    """Seconds each ready instance has had no request in flight (0 while busy)."""

    @property
    def capacity(self) -> int:
        return self.instances * self.max_activate_requests


class ScalingPolicy(Protocol):
    """What a policy factory returns."""

    interval: float

    def observe(self, now: float, concurrency: int) -> None: ...

    def evaluate(self, sample: Sample) -> int: ...

    def state(self) -> dict[str, Any]: ...


class WaterLevel:
    """Noslate's legacy policy: thresholds on active / capacity, checked every 10 s.

    Expand when W >= ``expand_at`` by ``ceil((active/target - capacity)/mar)``; shrink
    after ``shrink_after`` consecutive checks with W <= ``shrink_at`` by
    ``floor((capacity - active/target)/mar)``.
    """

    def __init__(
        self,
        interval: float = 10.0,
        expand_at: float = 0.8,
        shrink_at: float = 0.6,
        target: float = 0.7,
        shrink_after: float = 6,
    ) -> None:
        self.interval = float(interval)
        self.expand_at, self.shrink_at, self.target = expand_at, shrink_at, target
        self.shrink_after = int(shrink_after)
        self.low_checks = 0
        self.last_level = 0.0

    def observe(self, now: float, concurrency: int) -> None:
        """Not used: this policy looks only at each check's sample."""

    def evaluate(self, sample: Sample) -> int:
        cap = sample.capacity
        if cap == 0:
            self.low_checks = 0
            return 0
        level = sample.active / cap
        self.last_level = level
        mar = sample.max_activate_requests
        if level >= self.expand_at:
            self.low_checks = 0
            return max(0, math.ceil((sample.active / self.target - cap) / mar))
        if level <= self.shrink_at:
            self.low_checks += 1
            if self.low_checks >= self.shrink_after:
                self.low_checks = 0
                return -max(0, math.floor((cap - sample.active / self.target) / mar))
            return 0
        self.low_checks = 0
        return 0

    def state(self) -> dict[str, Any]:
        return {"water_level": round(self.last_level, 3), "low_checks": self.low_checks}


class ConcurrencyWindow:
    """Peak concurrency per fixed-length bucket over a sliding window."""

    def __init__(self, bucket: float, buckets: int) -> None:
        self.bucket = bucket
        self.peaks: deque[tuple[int, int]] = deque(maxlen=buckets)
        self.current = 0

    def observe(self, now: float, concurrency: int) -> None:
        self.current = concurrency
        index = int(now // self.bucket)
        if self.peaks and self.peaks[-1][0] == index:
            if concurrency > self.peaks[-1][1]:
                self.peaks[-1] = (index, concurrency)
        else:
            self.peaks.append((index, concurrency))

    def values(self, now: float) -> list[int]:
        """Bucket peaks oldest first; buckets with no change carry the running value."""
        index = int(now // self.bucket)
        self.observe(now, self.current)
        first = index - (self.peaks.maxlen or 1) + 1
        out: list[int] = []
        carried = 0
        known = dict(self.peaks)
        for i in range(first, index + 1):
            if i in known:
                carried = known[i]
                out.append(carried)
            else:
                out.append(self.current if i == index else carried)
        return out


class EMA:
    """Noslate's EMA policy: an exponential moving average of bucketed concurrency.

    60 s window in 6 buckets (each the bucket's peak concurrency), alpha 0.5; expand
    when ema / capacity > 0.7 (1 s cooldown), shrink when < 0.3 (60 s cooldown), to
    ``ceil(ema / 0.5 / maxActivateRequests)`` instances.
    """

    def __init__(
        self,
        interval: float = 1.0,
        window: float = 60.0,
        buckets: float = 6,
        alpha: float = 0.5,
        expand_at: float = 0.7,
        shrink_at: float = 0.3,
        target: float = 0.5,
        expand_cooldown: float = 1.0,
        shrink_cooldown: float = 60.0,
    ) -> None:
        self.interval = float(interval)
        self.window = ConcurrencyWindow(window / int(buckets), int(buckets))
        self.alpha, self.expand_at, self.shrink_at, self.target = alpha, expand_at, shrink_at, target
        self.expand_cooldown, self.shrink_cooldown = expand_cooldown, shrink_cooldown
        self.last_expand = -math.inf
        self.last_shrink = -math.inf
        self.ema = 0.0

    def observe(self, now: float, concurrency: int) -> None:
        self.window.observe(now, concurrency)

    def evaluate(self, sample: Sample) -> int:
        ema: float | None = None
        for value in self.window.values(sample.now):
            ema = value if ema is None else self.alpha * value + (1 - self.alpha) * ema
        self.ema = ema or 0.0
        have = sample.instances + sample.starting
        needed = math.ceil(self.ema / self.target / sample.max_activate_requests)
        cap = sample.capacity
        level = self.ema / cap if cap else (math.inf if self.ema else 0.0)
        now = sample.now
        if level > self.expand_at and needed > have and now - self.last_expand >= self.expand_cooldown:
            self.last_expand = now
            return needed - have
        cooled = now - self.last_shrink >= self.shrink_cooldown
        if level < self.shrink_at and needed < sample.instances and cooled:
            self.last_shrink = now
            return needed - sample.instances
        return 0

    def state(self) -> dict[str, Any]:
        return {"ema": round(self.ema, 3)}


class KeepAlive:
    """Ours: scale out on the recent peak, scale in on a longer one, keep-alive to zero.

    Expand at once to ``ceil(peak / (mar * target))`` instances, ``peak`` being the
    highest concurrency (in flight plus queued) over the last ``window`` seconds;
    shrink to what the peak over ``stable_window`` seconds needs. The last instance is
    kept for the keep-alive time: the ``quantile`` of the function's idle gaps (how long
    it went with nothing in flight) that a keep-alive of at most ``max_keepalive`` can
    cover, clamped to [``min_keepalive``, ``max_keepalive``] (Shahrad et al., ATC'20).
    A timer firing every 5 minutes keeps its instance; one firing hourly does not.
    """

    def __init__(
        self,
        interval: float = 1.0,
        window: float = 10.0,
        stable_window: float = 60.0,
        target: float = 0.7,
        min_keepalive: float = 30.0,
        max_keepalive: float = 600.0,
        quantile: float = 0.95,
        history: float = 64,
    ) -> None:
        self.interval = float(interval)
        self.short = ConcurrencyWindow(1.0, max(1, int(window)))
        self.long = ConcurrencyWindow(5.0, max(1, int(stable_window / 5)))
        self.target = target
        self.min_keepalive, self.max_keepalive = min_keepalive, max_keepalive
        self.quantile = quantile
        self.gaps: deque[float] = deque(maxlen=int(history))
        self.idle_since: float | None = -math.inf
        self.keepalive = min_keepalive

    def observe(self, now: float, concurrency: int) -> None:
        self.short.observe(now, concurrency)
        self.long.observe(now, concurrency)
        if concurrency == 0 and self.idle_since is None:
            self.idle_since = now
        elif concurrency > 0 and self.idle_since is not None:
            if self.idle_since > -math.inf:
                self.gaps.append(now - self.idle_since)
            self.idle_since = None
            self.keepalive = self._keepalive()

    def _keepalive(self) -> float:
        """The ``quantile`` of the idle gaps a keep-alive can cover (<= max_keepalive).

        Gaps longer than ``max_keepalive`` would cost a long idle instance and still
        end in a cold start, so they are left out; if most gaps are like that, the
        instance goes after ``min_keepalive``.
        """
        coverable = sorted(g for g in self.gaps if g <= self.max_keepalive)
        if not coverable or len(coverable) * 2 < len(self.gaps):
            return self.min_keepalive
        value = coverable[min(len(coverable) - 1, int(self.quantile * len(coverable)))]
        return min(self.max_keepalive, max(self.min_keepalive, value * 1.1))

    def evaluate(self, sample: Sample) -> int:
        per = sample.max_activate_requests * self.target
        needed = math.ceil(max(self.short.values(sample.now)) / per)
        have = sample.instances + sample.starting
        if needed > have:
            return needed - have
        floor = math.ceil(max(self.long.values(sample.now)) / per)
        idle = self.idle_since
        if idle is not None and idle > -math.inf and sample.now - idle < self.keepalive:
            floor = max(floor, 1)
        return -max(0, sample.instances - floor)

    def state(self) -> dict[str, Any]:
        return {"keepalive": round(self.keepalive, 1), "gaps": len(self.gaps)}


def policies() -> list[ScalingPolicySpec]:
    """The built-in policies."""
    return [
        ScalingPolicySpec("water-level", WaterLevel, "Noslate legacy water-level thresholds"),
        ScalingPolicySpec("ema", EMA, "Noslate EMA of bucketed concurrency"),
        ScalingPolicySpec("keepalive", KeepAlive, "peak-concurrency scale-out, adaptive idle keep-alive"),
    ]
