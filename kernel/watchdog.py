"""The per-request CPU-time limit (profile ``worker.cpuTimeLimitMs``), enforced from outside.

The watchdog reads ``/proc/<pid>/stat`` (utime + stime) of each instance with requests
in flight every ``limit / 50`` (at least every ~20 ms, at most every 200 ms: a 10 s
default limit is not worth 50 reads a second per busy instance; a 300 ms one is read
every 20 ms). The stat file stays open and is re-read with ``pread`` (one syscall). A
request's budget starts when the watchdog first sees it in flight; an instance whose
CPU time grew past the limit during a request is SIGKILLed, its requests fail with 503
"CPU time limit exceeded" and the scheduler replaces it.

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
_IDLE_CPU, _IDLE_AT, _NEXT_AT, _WINDOW_CPU, _WINDOW_AT = -1, -2, -3, -4, -5
"""``cpu_marks`` keys: the idle window's CPU ms and wall-clock start (ms); when a busy
instance is read next (ms)."""
SAMPLES_PER_LIMIT = 50
"""A busy instance is read every ``limit / SAMPLES_PER_LIMIT`` (within the bounds below)."""
MAX_PERIOD_MS = 200.0


def cpu_time_ms(pid: int) -> float | None:
    """User + system CPU time of ``pid`` in milliseconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_MS


class StatReader:
    """``/proc/<pid>/stat`` CPU times through descriptors kept open (``pread``: one syscall).

    A descriptor names one process: once it is gone (even if its pid is reused) the
    read fails and the time is None.
    """

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    def cpu_time_ms(self, pid: int) -> float | None:
        fd = self._fds.get(pid)
        if fd is None:
            try:
                fd = self._fds[pid] = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
        try:
            data = os.pread(fd, 1024, 0)
        except OSError:
            self.forget(pid)
            return None
        fields = data[data.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) * _TICK_MS

    def forget(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def keep_only(self, pids: set[int]) -> None:
        for pid in [p for p in self._fds if p not in pids]:
            self.forget(pid)

    def close(self) -> None:
        self.keep_only(set())


class Watchdog:
    """Polls CPU time of busy instances and kills the ones over their limit."""

    def __init__(
        self, instances: Any, interval: float = INTERVAL, idle_share: float = 0.1, idle_window: float = 10.0
    ) -> None:
        self._instances = instances
        """A callable returning the live instances."""
        self.idle_budget_ms = idle_share * idle_window * 1000
        """CPU ms an instance may use with nothing in flight within ``idle_window_ms``."""
        self.idle_window_ms = idle_window * 1000
        self.interval = interval
        self.kills = 0
        self._ticks = 0
        self.stats = StatReader()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                self.check()
        finally:
            self.stats.close()

    def check(self) -> None:
        self._ticks += 1
        idle_tick = self._ticks % IDLE_EVERY == 0
        now = trio.current_time() * 1000
        live = set()
        for inst in list(self._instances()):
            channel = inst.channel
            if channel is None or inst.state == "stopped" or not inst.pid:
                continue
            if getattr(inst, "kill_cause", None) is not None:
                continue  # killed already; its exit is on its way
            live.add(inst.pid)
            in_flight = channel._exchanges
            marks = inst.cpu_marks
            if not in_flight:
                for rid in [r for r in marks if r >= 0 or r == _NEXT_AT]:
                    del marks[rid]
                if idle_tick:
                    self._check_idle(inst, marks)
                continue
            limit = inst.profile.worker.cpu_time_limit_ms
            if now < marks.get(_NEXT_AT, now):
                continue
            marks[_NEXT_AT] = now + min(MAX_PERIOD_MS, limit / SAMPLES_PER_LIMIT)
            for key in (_IDLE_CPU, _IDLE_AT, _WINDOW_CPU, _WINDOW_AT):
                marks.pop(key, None)
            cpu = self.stats.cpu_time_ms(inst.pid)
            if cpu is None:
                continue
            for rid in [r for r in marks if r >= 0 and r not in in_flight]:
                del marks[rid]
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
        if idle_tick:
            self.stats.keep_only(live)  # close the stat files of instances that ended

    def _check_idle(self, inst: Any, marks: dict[int, float]) -> None:
        """Kill an instance that burns over half a core with no request in flight, or
        more than its idle budget (``[server] idle_cpu_share`` of a core) in a window."""
        cpu = self.stats.cpu_time_ms(inst.pid)
        if cpu is None:
            return
        now = trio.current_time() * 1000
        window_at = marks.get(_WINDOW_AT)
        if window_at is None or now - window_at > self.idle_window_ms:
            marks[_WINDOW_CPU], marks[_WINDOW_AT] = cpu, now
        elif cpu - marks[_WINDOW_CPU] > self.idle_budget_ms:
            self.kills += 1
            used = cpu - marks[_WINDOW_CPU]
            inst.log(
                "error",
                f"idle CPU limit exceeded: instance {inst.id} used {used:.0f} ms of CPU in "
                f"{(now - window_at) / 1000:.1f} s with no request in flight (timers or background work "
                f"over {self.idle_budget_ms:.0f} ms per {self.idle_window_ms / 1000:g} s, "
                "[server] idle_cpu_share); killed",
            )
            log.warning("instance %s (pid %d): idle CPU budget exceeded", inst.id, inst.pid)
            inst.kill("idle-cpu-limit")
            return
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
