"""Prometheus metrics of the daemon (served at ``/metrics`` on the control listener)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """One registry per daemon, so tests can run several daemons in a process."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "noslate_requests", "Inbound requests by function and status", ["function", "status"], registry=r
        )
        self.latency = Histogram(
            "noslate_request_duration_seconds",
            "Time from request arrival to the last response byte",
            ["function"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.instances = Gauge(
            "noslate_instances", "Instances by function and state", ["function", "state"], registry=r
        )
        self.queue_depth = Gauge(
            "noslate_queue_depth", "Queued requests by function", ["function"], registry=r
        )
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
