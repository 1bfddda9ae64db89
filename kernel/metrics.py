"""Prometheus metrics of the daemon (served at ``/metrics`` on the control listener)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "QUEUE_WAIT_BUCKETS", "Metrics", "RequestStats"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Upper bounds (seconds) of ``noslate_request_duration_seconds`` (plus ``+Inf``)."""


QUEUE_WAIT_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Upper bounds (seconds) of ``noslate_queue_wait_seconds``: a request that found a free
instance waited ~0 and lands in the first bucket."""


class FunctionHistogram:
    """A histogram per function as plain lists: per-bucket counts (not cumulative; the
    last one is +Inf), then the sum. Turned into a metric family at scrape time."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.rows: dict[str, list[float]] = {}

    def observe(self, function: str, seconds: float) -> None:
        row = self.rows.get(function)
        if row is None:
            row = self.rows[function] = [0.0] * (len(self.buckets) + 2)
        row[bisect.bisect_left(self.buckets, seconds)] += 1
        row[-1] += seconds

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        out = HistogramMetricFamily(name, documentation, labels=["function"])
        bounds = [*(_bound(b) for b in self.buckets), "+Inf"]
        for function, row in list(self.rows.items()):
            total, cumulative = 0.0, []
            for bound, n in zip(bounds, row, strict=False):
                total += n
                cumulative.append((bound, total))
            out.add_metric([function], cumulative, row[-1])
        return out


class RequestStats(Collector):
    """Per-request counters of the data plane, turned into metric families at scrape time.

    ``noslate_requests_total``, ``noslate_request_duration_seconds`` and
    ``noslate_queue_wait_seconds`` change on every request: a plain dict update here
    costs a fraction of prometheus-client's labelled, lock-protected
    ``inc()``/``observe()``, and the exposition is the same.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        """(function or "-", status) -> requests."""
        self.latency = FunctionHistogram(buckets)
        self.queue_wait = FunctionHistogram(QUEUE_WAIT_BUCKETS)

    def record(self, function: str, status: int, seconds: float) -> None:
        """Count one finished request (``function`` "" when no function matched)."""
        key = (function or "-", status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        if function:
            self.latency.observe(function, seconds)

    def waited(self, function: str, seconds: float) -> None:
        """A request of ``function`` got an instance after ``seconds`` in its queue."""
        self.queue_wait.observe(function, seconds)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "noslate_requests", "Inbound requests by function and status", labels=["function", "status"]
        )
        for (function, status), n in list(self.counts.items()):
            requests.add_metric([function, str(status)], n)
        yield requests
        yield self.latency.family(
            "noslate_request_duration_seconds", "Time from request arrival to the last response byte"
        )
        yield self.queue_wait.family(
            "noslate_queue_wait_seconds",
            "Time a request waited for an instance of its function (about 0 when one was free)",
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def get(self, function: str, status: int) -> int:
        """Requests counted for (function, status)."""
        return self.counts.get((function or "-", status), 0)


def _bound(value: Any) -> str:
    return repr(float(value))


class Metrics:
    """One registry per daemon, so tests can run several daemons in a process."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = RequestStats()
        """``noslate_requests_total``, ``noslate_request_duration_seconds`` and
        ``noslate_queue_wait_seconds``."""
        r.register(self.requests)
        self.instances = Gauge(
            "noslate_instances", "Instances by function and state", ["function", "state"], registry=r
        )
        self.queue_depth = Gauge(
            "noslate_queue_depth", "Queued requests by function", ["function"], registry=r
        )
        self.in_flight = Gauge(
            "noslate_requests_in_flight", "Requests being served by function", ["function"], registry=r
        )
        self.daemon_in_flight = Gauge(
            "noslate_daemon_requests_in_flight", "HTTP requests the data plane is handling", registry=r
        )
        self.daemon_queued = Gauge("noslate_daemon_queued", "Requests queued over every function", registry=r)
        self.pool_used = Gauge(
            "noslate_memory_pool_used_bytes", "Sum of the memory limits of live instances", registry=r
        )
        self.pool_limit = Gauge("noslate_memory_pool_limit_bytes", "The memory pool's size", registry=r)
        self.saturation = Gauge(
            "noslate_saturation",
            "How full the daemon is, 0..1 (memory pool, requests in flight and queued): an HPA target",
            registry=r,
        )
        self.ready = Gauge("noslate_ready", "1 while /readyz answers 200", registry=r)
        self.cold_starts = Counter(
            "noslate_instance_starts",
            "Instance starts by function and role",
            ["function", "role"],
            registry=r,
        )
        self.instance_exits = Counter(
            "noslate_instance_exits",
            "Instance exits by function and cause",
            ["function", "cause"],
            registry=r,
        )
        self.oom_kills = Counter("noslate_oom_kills", "Instances killed for memory", ["function"], registry=r)
        self.cpu_limit_kills = Counter(
            "noslate_cpu_limit_kills", "Instances killed for the CPU-time limit", ["function"], registry=r
        )
        self.rejections = Counter(
            "noslate_rejections", "Rejected requests by reason", ["function", "reason"], registry=r
        )
        self.subrequests = Counter(
            "noslate_subrequests",
            "Worker fetch() subrequests by outcome",
            ["function", "outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def set_instance_gauges(self, counts: dict[tuple[str, str], int]) -> None:
        """Replace the instances gauge with ``{(function, state): count}``."""
        self.instances.clear()
        for (function, state), n in counts.items():
            self.instances.labels(function, state).set(n)

    def set_queue_depths(self, depths: dict[str, int]) -> None:
        self.queue_depth.clear()
        for function, n in depths.items():
            self.queue_depth.labels(function).set(n)

    def set_in_flight(self, counts: dict[str, int]) -> None:
        self.in_flight.clear()
        for function, n in counts.items():
            self.in_flight.labels(function).set(n)
