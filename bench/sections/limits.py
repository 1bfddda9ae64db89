"""limits: busy-loop kill latency past the CPU limit; OOM detection latency.

Busy loop: a function with ``worker.cpuTimeLimitMs = 200`` spins on ``/spin``; the
figure is the time from sending the request to its 5xx response, minus the limit
(the watchdog's lateness; goal: within ~100 ms). OOM (needs isolation_cgroup): a
function with ``resourceLimit.memory = 64 MiB`` allocates until the kernel kills it;
a thread polls the instance's memory cgroup OOM counter (and ``/proc/<pid>/stat``)
every 0.2 ms to see the kill, and the figure is the time from that kill to the
client's 5xx. The instance pid comes from
``GET /v1/instances`` after a first request.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from bench.common import KeepAlive, Skip, figure, goal, relate, section
from bench.context import Context
from bench.ours import BASE_PLUGINS, Daemon, pid_alive, plugin_available
from bench.workloads import HOG_SW, SPIN_SW

CPU_LIMIT_MS = 200
MEMORY_LIMIT = 64 << 20


class DeathWatch(threading.Thread):
    """Polls until a pid dies or its memory cgroup counts an OOM kill.

    ``died_at`` is a perf_counter timestamp: the first poll that saw the kill. The
    cgroup counter (v1 ``memory.oom_control``, v2 ``memory.events``) moves when the
    kernel decides, before the process has finished exiting.
    """

    def __init__(self, pid: int, timeout: float, oom_file: str | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.timeout, self.oom_file, self.died_at = pid, timeout, oom_file, 0.0
        self.how = ""

    def _oom_kills(self) -> int:
        if not self.oom_file:
            return 0
        try:
            with open(self.oom_file) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self) -> None:
        deadline = time.perf_counter() + self.timeout
        start = self._oom_kills()
        while time.perf_counter() < deadline:
            if self.oom_file and self._oom_kills() > start:
                self.died_at, self.how = time.perf_counter(), "oom_kill counter"
                return
            if not pid_alive(self.pid):
                self.died_at, self.how = time.perf_counter(), "process exit"
                return
            time.sleep(0.0002)


def _oom_file(instance: dict[str, Any]) -> str | None:
    """The instance's memory cgroup OOM counter file, from its sandbox annotations."""
    procs = instance.get("sandbox", {}).get("annotations", {}).get("noslate.cgroup.procs", "")
    for line in procs.splitlines():
        if "/memory/" in line or "/sys/fs/cgroup/unified/" in line:
            base = os.path.dirname(line.strip())
            for name in ("memory.oom_control", "memory.events"):
                if os.path.exists(os.path.join(base, name)):
                    return os.path.join(base, name)
    return None


def _one(d: Daemon, name: str, path: str, timeout: float) -> tuple[int, float, float]:
    """(status, seconds to response, seconds to the instance's death) for one killing request."""
    d.warm(name)
    insts = [i for i in d.instances(name) if i.get("state") == "ready"]
    if not insts:
        raise Skip(f"{name}: no ready instance listed by /v1/instances")
    pid = int(insts[0]["pid"])
    watch = DeathWatch(pid, timeout, _oom_file(insts[0]))
    conn = KeepAlive(d.data_port, d.host(name), timeout=timeout)
    try:
        watch.start()
        time.sleep(0.01)  # the watcher has read the counter's start value
        t0 = time.perf_counter()
        status, _body, dt = conn.get(path)
    finally:
        conn.close()
    watch.join(timeout)
    died = watch.died_at - t0 if watch.died_at else float("nan")
    return status, dt, died


def _run_kind(
    d: Daemon, name: str, path: str, runs: int, timeout: float, notes: list[str]
) -> list[tuple[int, float, float]]:
    """``runs`` killing requests; a run whose instance does not come back is noted and skipped."""
    out = []
    for _ in range(runs):
        try:
            out.append(_one(d, name, path, timeout))
        except Skip as exc:
            if not out:  # the function never served: more runs would only wait again
                raise
            notes.append(f"{name}: a run was skipped: {str(exc)[:200]}")
        time.sleep(0.2)
    if not out:
        raise Skip(f"{name}: no run completed")
    return out


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    figs: list[dict[str, Any]] = []
    notes: list[str] = []
    d = ctx.daemon(BASE_PLUGINS)
    d.deploy("lim-spin", SPIN_SW, {"worker": {"cpuTimeLimitMs": CPU_LIMIT_MS, "replicaCountLimit": 1}})
    try:
        spins = _run_kind(d, "lim-spin", "/spin", p.limit_runs, 30, notes)
    finally:
        d.remove("lim-spin")
    statuses = sorted({s for s, _, _ in spins})
    notes.append(
        f"busy loop: statuses {statuses}, instance died in {sum(1 for *_, x in spins if x == x)}/{len(spins)}"
    )
    limit = figure("limits.cpu.limit", "configured cpuTimeLimitMs", [CPU_LIMIT_MS] * len(spins), "ms")
    late = figure(
        "limits.cpu.kill_past_limit",
        "busy loop: 5xx after the limit",
        [dt * 1000 - CPU_LIMIT_MS for _, dt, _ in spins],
        "ms",
        extra={"statuses": statuses},
    )
    relate(late, limit)
    relate(limit, limit)
    goal(
        late,
        "<= 100 ms past the limit, and a 5xx",
        lambda f: f["median"] <= 100 and all(s >= 500 for s in statuses),
    )
    figs += [limit, late]

    if not plugin_available("isolation_cgroup"):
        notes.append("oom: isolation_cgroup plugin not built")
        return section("limits", figs, notes)
    try:
        dc = ctx.daemon([*BASE_PLUGINS, "isolation_cgroup"])
    except Skip as exc:
        notes.append(f"oom: {exc}")
        return section("limits", figs, notes)
    dc.deploy(
        "lim-hog", HOG_SW, {"resourceLimit": {"memory": MEMORY_LIMIT}, "worker": {"replicaCountLimit": 1}}
    )
    try:
        hogs = _run_kind(dc, "lim-hog", "/hog", p.limit_runs, 60, notes)
    except Skip as exc:
        notes.append(f"oom: {exc}")
        hogs = []
    finally:
        dc.remove("lim-hog")
    ctx.stop_daemon([*BASE_PLUGINS, "isolation_cgroup"])
    if not hogs:
        return section("limits", figs, notes)
    ok = [(s, dt, died) for s, dt, died in hogs if died == died]
    statuses = sorted({s for s, _, _ in hogs})
    notes.append(f"oom: statuses {statuses}, instance death seen in {len(ok)}/{len(hogs)}")
    if not ok:
        notes.append("oom: the instance never died (no memory limit applied?)")
        return section("limits", figs, notes)
    to_death = figure(
        "limits.oom.request_to_death",
        "oom: request to kill (allocation)",
        [died * 1000 for _, _, died in ok],
        "ms",
    )
    detect = figure(
        "limits.oom.death_to_5xx",
        "oom: kill to client 5xx",
        [(dt - died) * 1000 for _, dt, died in ok],
        "ms",
        extra={"statuses": statuses},
    )
    relate(detect, to_death)
    relate(to_death, to_death)
    goal(detect, "a 5xx for every OOM kill", lambda f: all(s >= 500 for s in statuses))
    figs += [to_death, detect]
    return section("limits", figs, notes)
