"""Replay a trace through the real ReactiveScheduler and policies on trio's virtual clock."""

from __future__ import annotations

import math
import random
from typing import Any

import trio
import trio.testing
from attrs import define, field, frozen

from kernel.interfaces import FunctionVersion, RejectedError
from kernel.profile import parse_profile
from plugins.scaler_reactive.config import ScalerConfig
from plugins.scaler_reactive.dispatch import strategies
from plugins.scaler_reactive.policies import policies
from plugins.scaler_reactive.scheduler import ReactiveScheduler

from .trace import FunctionTrace


@frozen
class SimOptions:
    """What the simulated platform looks like."""

    cold_start: float = 0.25
    """Seconds from start() to a ready instance (warmfork ~0.01, cold V8 ~0.25)."""
    duration_median: float = 0.3
    """Median request duration; per-function medians vary log-normally around it."""
    max_activate_requests: int = 10
    memory: int = 128 << 20
    memory_pool: int = 1 << 40
    replica_count_limit: int = 1000
    reservation_count: int = 0
    queue_timeout: float = 10.0
    seed: int = 3


class SimInstance:
    """A pretend instance: it only records how long it lived."""

    def __init__(self, factory: SimFactory, version: FunctionVersion, n: int, began: float) -> None:
        self.factory = factory
        self.id = f"{version.name}-{n}"
        self.function = version.name
        self.version = version.version
        self.pid = n
        self.state = "ready"
        self.active = 0
        self.served = 0
        self.began = began
        self.started_at = trio.current_time()
        self.stopped_at: float | None = None

    async def stop(self, *, drain_timeout: float) -> None:
        self.stopped_at = trio.current_time()
        self.state = "stopped"


@define
class SimFactory:
    """Starts SimInstances after ``cold_start`` virtual seconds."""

    cold_start: float
    instances: list[SimInstance] = field(factory=list)

    async def start(self, version: FunctionVersion) -> SimInstance:
        began = trio.current_time()
        await trio.sleep(self.cold_start)
        inst = SimInstance(self, version, len(self.instances) + 1, began)
        self.instances.append(inst)
        return inst

    def instance_seconds(self, end: float) -> float:
        return sum(min(end, i.stopped_at or end) - i.began for i in self.instances)


@define
class Result:
    """What one policy did with one trace."""

    policy: str
    requests: int = 0
    served: int = 0
    cold: int = 0
    queued: int = 0
    rejected: int = 0
    waits: list[float] = field(factory=list)
    per_function: dict[str, list[int]] = field(factory=dict)
    instance_seconds: float = 0.0
    starts: int = 0
    duration: float = 0.0

    def summary(self) -> dict[str, Any]:
        waits = sorted(self.waits)

        def pct(p: float) -> float:
            return waits[min(len(waits) - 1, math.ceil(p * len(waits)) - 1)] if waits else 0.0

        ratios = sorted(c / n for n, c in self.per_function.values())
        p75 = ratios[min(len(ratios) - 1, math.ceil(0.75 * len(ratios)) - 1)] if ratios else 0.0
        return {
            "policy": self.policy,
            "fn_cold_p75": p75,
            "requests": self.requests,
            "cold_start_ratio": self.cold / max(1, self.served),
            "queued_ratio": self.queued / max(1, self.served),
            "rejected": self.rejected,
            "p50_wait_ms": pct(0.5) * 1000,
            "p99_wait_ms": pct(0.99) * 1000,
            "max_wait_ms": (waits[-1] if waits else 0.0) * 1000,
            "instance_seconds": self.instance_seconds,
            "mean_instances": self.instance_seconds / max(1e-9, self.duration),
            "starts": self.starts,
        }


def _version(trace: FunctionTrace, opts: SimOptions) -> FunctionVersion:
    profile = parse_profile(
        {
            "name": trace.name,
            "resourceLimit": {"memory": opts.memory},
            "worker": {
                "maxActivateRequests": opts.max_activate_requests,
                "replicaCountLimit": opts.replica_count_limit,
                "reservationCount": opts.reservation_count,
            },
        }
    )
    return FunctionVersion(profile=profile, version="v1", artifact=b"")


async def _replay(
    traces: list[FunctionTrace], policy: str, options: dict[str, float], opts: SimOptions
) -> Result:
    config = ScalerConfig(
        policy=policy,
        policy_options=options,
        memory_pool=opts.memory_pool,
        queue_timeout=opts.queue_timeout,
        max_queue_length=100000,
    )
    factory = SimFactory(opts.cold_start)
    scheduler = ReactiveScheduler(
        factory, {s.name: s for s in strategies()}, {p.name: p for p in policies()}, config
    )
    result = Result(policy)
    rng = random.Random(opts.seed)
    minutes = max(len(t.counts) for t in traces)

    async def request(name: str, duration: float) -> None:
        t0 = trio.current_time()
        try:
            lease = await scheduler.acquire(name)
        except RejectedError:
            result.rejected += 1
            return
        waited = trio.current_time() - t0
        result.waits.append(waited)
        result.served += 1
        result.cold += lease.cold
        counts = result.per_function.setdefault(name, [0, 0])
        counts[0] += 1
        counts[1] += lease.cold
        result.queued += waited > 0
        await trio.sleep(duration)
        lease.release()

    async def function(trace: FunctionTrace, nursery: trio.Nursery) -> None:
        frng = random.Random(rng.random())
        median = opts.duration_median * math.exp(frng.gauss(0, 1.0))
        for minute, count in enumerate(trace.counts):
            times = sorted(minute * 60 + frng.random() * 60 for _ in range(count))
            for t in times:
                await trio.sleep_until(t)
                result.requests += 1
                duration = median * math.exp(frng.gauss(0, 0.5))
                nursery.start_soon(request, trace.name, duration)

    async with trio.open_nursery() as outer:
        await outer.start(scheduler.run)
        for trace in traces:
            scheduler.deploy(_version(trace, opts))
        async with trio.open_nursery() as nursery:
            for trace in traces:
                nursery.start_soon(function, trace, nursery)
        end = max(minutes * 60.0, trio.current_time())
        result.duration = end
        result.instance_seconds = factory.instance_seconds(end)
        result.starts = len(factory.instances)
        outer.cancel_scope.cancel()
    return result


def simulate(
    traces: list[FunctionTrace],
    policy: str,
    options: dict[str, float] | None = None,
    opts: SimOptions | None = None,
) -> dict[str, Any]:
    """Replay ``traces`` under ``policy`` on a virtual clock; return the summary."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    result = trio.run(_replay, traces, policy, options or {}, opts or SimOptions(), clock=clock)
    return result.summary()
