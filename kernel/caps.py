"""Daemon-wide caps on what a function profile may ask for (``[limits]``).

Checked at deploy: a profile over a cap is refused with 422, one line per field,
naming the field, the value and the cap, so no tenant can claim more memory, CPU,
tasks, replicas, reservations, concurrency or CPU time than the operator allows.
"""

from __future__ import annotations

from typing import Any

from kernel.profile import FunctionProfile


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def cap_errors(profile: FunctionProfile, limits: Any) -> list[str]:
    """``message @ $.path`` for every profile value above its cap in ``limits``."""
    rl, w = profile.resource_limit, profile.worker
    checks: list[tuple[str, float | None, float, str]] = [
        ("resourceLimit.memory", rl.memory, limits.memory, "memory"),
        ("resourceLimit.cpu", rl.cpu, limits.cpu, "cpu"),
        ("resourceLimit.pids", rl.pids, limits.pids, "pids"),
        ("worker.replicaCountLimit", w.replica_count_limit, limits.replicas, "replicas"),
        ("worker.reservationCount", w.reservation_count, limits.reservations, "reservations"),
        ("worker.maxActivateRequests", w.max_activate_requests, limits.concurrency, "concurrency"),
        ("worker.cpuTimeLimitMs", w.cpu_time_limit_ms, limits.cpu_time_limit_ms, "cpu_time_limit_ms"),
        (
            "worker.initializationTimeout",
            w.initialization_timeout,
            limits.initialization_timeout_ms,
            "initialization_timeout_ms",
        ),
    ]
    errors = []
    for path, value, cap, key in checks:
        if value is not None and value > cap:
            field = path.rsplit(".", 1)[1]
            errors.append(
                f"{field} is {_num(value)}, above the cap of {_num(cap)} ([limits] {key}) @ $.{path}"
            )
    if w.reservation_count > w.replica_count_limit:
        errors.append(
            f"reservationCount {w.reservation_count} is above replicaCountLimit {w.replica_count_limit}"
            " @ $.worker.reservationCount"
        )
    return errors
