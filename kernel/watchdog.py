"""The per-request CPU-time limit (profile ``worker.cpuTimeLimitMs``), enforced from outside.

Every ~20 ms the watchdog reads ``/proc/<pid>/stat`` (utime + stime) of each instance
with requests in flight. A request's budget starts when the watchdog first sees it in
flight; an instance whose CPU time grew past the limit during a request is SIGKILLed,
its requests fail with 503 "CPU time limit exceeded" and the scheduler replaces it.

A runaway can outlive its request (the client left or the response deadline passed,
and the worker, busy spinning, never read the abort; or timers keep spinning after
the response). So an instance with nothing in flight is checked too, every
``IDLE_EVERY`` ticks: if its CPU time grows by more than the limit within a window
of twice the limit (it burns over half a core while idle), it is killed as well.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import trio

log = logging.getLogger("noslate.watchdog")
INTERVAL = 0.02
_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
IDLE_EVERY = 10
"""Idle instances are sampled every this many ticks (every 200 ms)."""
_IDLE_CPU, _IDLE_AT = -1, -2
"""``cpu_marks`` keys of the idle window: CPU ms at its start, and its wall-clock start."""


def cpu_time_ms(pid: int) -> float | None:
    """User + system CPU time of ``pid`` in milliseconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_MS


class Watchdog:
    """Polls CPU time of busy instances and kills the ones over their limit."""

    def __init__(self, instances: Any, interval: float = INTERVAL) -> None:
        self._instances = instances
        """A callable returning the live instances."""
        self.interval = interval
        self.kills = 0
        self._ticks = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            self.check()

    def check(self) -> None:
        self._ticks += 1
        idle_tick = self._ticks % IDLE_EVERY == 0
        for inst in list(self._instances()):
            channel = inst.channel
            if channel is None or inst.state == "stopped" or not inst.pid:
                continue
            if getattr(inst, "kill_cause", None) is not None:
                continue  # killed already; its exit is on its way
            in_flight = channel._exchanges
            marks = inst.cpu_marks
            if not in_flight:
                for rid in [r for r in marks if r >= 0]:
                    del marks[rid]
                if idle_tick:
                    self._check_idle(inst, marks)
                continue
            marks.pop(_IDLE_CPU, None)
            marks.pop(_IDLE_AT, None)
            cpu = cpu_time_ms(inst.pid)
            if cpu is None:
                continue
            for rid in [r for r in marks if r not in in_flight]:
                del marks[rid]
            limit = inst.profile.worker.cpu_time_limit_ms
            for rid in in_flight:
                start = marks.setdefault(rid, cpu)
                if cpu - start > limit:
                    self.kills += 1
                    inst.log(
                        "error",
                        f"CPU time limit exceeded: request used over {limit} ms of CPU; "
                        f"instance {inst.id} killed",
                    )
                    log.warning(
                        "instance %s (pid %d): CPU time limit %d ms exceeded", inst.id, inst.pid, limit
                    )
                    inst.kill("cpu-limit")
                    break

    def _check_idle(self, inst: Any, marks: dict[int, float]) -> None:
        """Kill an instance that burns over half a core with no request in flight."""
        cpu = cpu_time_ms(inst.pid)
        if cpu is None:
            return
        now = trio.current_time() * 1000
        limit = inst.profile.worker.cpu_time_limit_ms
        start_at = marks.get(_IDLE_AT)
        if start_at is None or now - start_at > 2 * limit:
            marks[_IDLE_CPU], marks[_IDLE_AT] = cpu, now
            return
        if cpu - marks[_IDLE_CPU] > limit:
            self.kills += 1
            inst.log(
                "error",
                f"CPU time limit exceeded: instance {inst.id} used over {limit} ms of CPU with no "
                "request in flight (a runaway left by an aborted or timed-out request, or timers); killed",
            )
            log.warning(
                "instance %s (pid %d): CPU time limit %d ms exceeded while idle", inst.id, inst.pid, limit
            )
            inst.kill("cpu-limit")
