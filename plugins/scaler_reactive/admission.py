"""Overload protection: per-function token buckets (429) and a global breaker (503)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import trio

from kernel.interfaces import Rejection
from plugins.scaler_reactive.config import BreakerConfig


def _now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside trio (sync callers, tools)
        import time

        return time.monotonic()


class TokenBucket:
    """Noslate's bucket: starts full, gains ``per_fill`` tokens every ``interval`` s."""

    def __init__(self, capacity: int, per_fill: int, interval: float, now: float) -> None:
        self.capacity, self.per_fill, self.interval = capacity, per_fill, interval
        self.tokens = capacity
        self.last_fill = now

    def _refill(self, now: float) -> None:
        fills = math.floor((now - self.last_fill) / self.interval)
        if fills > 0:
            self.tokens = min(self.capacity, self.tokens + fills * self.per_fill)
            self.last_fill += fills * self.interval

    def take(self, now: float) -> float | None:
        """Take a token; None if granted, else seconds until the next fill."""
        self._refill(now)
        if self.tokens > 0:
            self.tokens -= 1
            return None
        return max(0.0, self.last_fill + self.interval - now)


class CircuitBreaker:
    """Opens after ``open_after`` unhealthy checks in a row, closes after ``close_after``."""

    def __init__(self, config: BreakerConfig, gauge: Callable[[], tuple[int, int]] | None = None) -> None:
        self.config = config
        self.gauge = gauge
        """Returns (active, pending) over all functions; set by the scheduler."""
        self.load = lambda: os.getloadavg()[0]
        self.open = False
        self.bad = 0
        self.good = 0
        self.last: dict[str, Any] = {}

    def check(self) -> bool:
        """One health check; returns whether the breaker is open afterwards."""
        active, pending = self.gauge() if self.gauge else (0, 0)
        load = self.load()
        c = self.config
        reasons = []
        if active + pending > c.max_active_pending:
            reasons.append(f"active+pending {active + pending} > {c.max_active_pending}")
        if pending > c.max_pending:
            reasons.append(f"pending {pending} > {c.max_pending}")
        if c.max_load is not None and load > c.max_load:
            reasons.append(f"load average {load:.1f} > {c.max_load}")
        self.last = {"active": active, "pending": pending, "load": load, "reasons": reasons}
        if reasons:
            self.bad, self.good = self.bad + 1, 0
            if self.bad >= c.open_after:
                self.open = True
        else:
            self.good, self.bad = self.good + 1, 0
            if self.good >= c.close_after:
                self.open = False
        return self.open

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check every ``check_interval`` seconds until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(self.config.check_interval)
            self.check()


class Admission:
    """What ``noslate_admit`` consults: rate limits per function and the breaker."""

    def __init__(self, breaker: BreakerConfig | None = None, clock: Callable[[], float] = _now) -> None:
        self.breaker = CircuitBreaker(breaker or BreakerConfig())
        self.clock = clock
        self.buckets: dict[str, tuple[Any, TokenBucket]] = {}
        self.rejections: dict[str, int] = {}

    def _reject(self, status: int, reason: str, message: str, retry_after: float) -> Rejection:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        return Rejection(status=status, reason=reason, message=message, retry_after=retry_after)

    def admit(self, function: Any) -> Rejection | None:
        """Check ``function`` (a FunctionProfile); a Rejection refuses the request."""
        if self.breaker.config.enabled and self.breaker.open:
            return self._reject(
                503,
                "circuit_open",
                "the daemon is overloaded ("
                + "; ".join(self.breaker.last.get("reasons", []))
                + "); retry later",
                self.breaker.config.check_interval * self.breaker.config.close_after,
            )
        limit = function.rate_limit
        if limit is None:
            self.buckets.pop(function.name, None)
            return None
        now = self.clock()
        entry = self.buckets.get(function.name)
        if entry is None or entry[0] != limit:
            bucket = TokenBucket(
                limit.max_token_count, limit.tokens_per_fill, limit.fill_interval / 1000, now
            )
            self.buckets[function.name] = (limit, bucket)
        else:
            bucket = entry[1]
        wait = bucket.take(now)
        if wait is None:
            return None
        return self._reject(
            429,
            "rate_limited",
            f"function {function.name!r} is over its rateLimit "
            f"({limit.tokens_per_fill} per {limit.fill_interval} ms, burst {limit.max_token_count})",
            wait,
        )

    def statistics(self) -> dict[str, Any]:
        return {
            "breaker": {"open": self.breaker.open, **self.breaker.last},
            "rejections": dict(self.rejections),
        }
