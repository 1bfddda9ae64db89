"""warmfork: first request with no instance running, cold vs seed fork; idle memory.

Measures (never asserts) through HTTP on one keep-alive connection to a real
``noslate serve`` (runtime_v8 + warmfork), with disposable functions so every request
starts a new instance on its path. Warm samples are taken back to back, so each
request shares the two cores with the previous instance's exit and the spare refill;
``bench/sections/coldstart.py`` (``make bench``) spaces requests 50 ms apart so each
arrives with no instance running, and is the figure the goals are judged on.

* ``warmfork.trivial`` / ``warmfork.init150``: fork of the function's seed;
* ``spare.*``: the same with pre-forked spares (``[plugins.warmfork] spares = 1``, plus
  what disposable functions get by default); the ``warmfork.*`` daemon has no spares;
* ``cold.*``: ``worker.disableSeed`` (a new Python + V8 process per request);
* ``running.*``: the same request to an instance that is already running (the HTTP
  floor); ``running``, ``warmfork`` and ``spare`` samples are taken in alternating
  chunks so they share the machine's noise;
* ``memory.*``: PSS and private memory of idle instances forked from one seed
  (``/proc/<pid>/smaps_rollup``), and of the seed itself;
* same-run baselines below HTTP (:mod:`bench.warmfork_launcher`): a bare ``os.fork()``
  of a small Python process, and ``fork_instance`` of a real V8 seed to its Hello and
  first response through the launcher alone, with the new instance's CPU time;
* a note with the CPU time per disposable request of the daemon, launcher and seed.

Goals (issue 4) are attached to the figures: warmfork p50 <= 3 ms (trivial) / <= 5 ms
(init150) and >= 20x faster than cold; idle private memory <= 2 MiB.

The init script does JSON round trips at top level, calibrated so that the seed's
``load`` takes ~150 ms more than the trivial script's.

    .venv/bin/python -m bench.warmfork_bench [--runs 30] [--cold-runs 10] [--json FILE]

``run(runs, cold_runs, instances)`` returns a section dict in bench/'s result format
(``bench.common.figure``), for ``bench/run.py`` to include.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import attrs  # noqa: E402

from bench.common import figure, goal, relate, section, smaps_rollup, tree_pids  # noqa: E402
from bench.ours import BASE_PLUGINS, Daemon  # noqa: E402
from bench.workloads import sw_script  # noqa: E402
from plugins.warmfork.config import WarmforkConfig  # noqa: E402

MIB = 1024.0
TARGET_INIT_MS = 150.0
READY = re.compile(r"seed (\d+) of version (\S+) ready in ([\d.]+) ms")


def seed_ready_ms(d: Daemon, name: str, timeout: float = 60.0) -> tuple[int, float]:
    """The pid and ``load`` time of ``name``'s newest seed, from the function log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = d.control("GET", f"/v1/functions/{name}/logs")
        lines = resp.json()
        lines = lines["lines"] if isinstance(lines, dict) else lines
        found = [READY.search(x["message"]) for x in lines]
        found = [m for m in found if m]
        if found:
            return int(found[-1].group(1)), float(found[-1].group(3))
        time.sleep(0.1)
    raise RuntimeError(f"{name}: no seed became ready within {timeout} s")


def calibrate(d: Daemon) -> tuple[int, float, float]:
    """Iterations of the init loop that make a seed's load ~150 ms slower than trivial."""
    d.deploy("wfb-cal0", sw_script(0))
    base = min(seed_ready_ms(d, "wfb-cal0")[1] for _ in range(1))
    d.remove("wfb-cal0")
    iterations, took = 200, 0.0
    for attempt in range(4):
        name = f"wfb-cal{attempt + 1}"
        d.deploy(name, sw_script(iterations))
        took = seed_ready_ms(d, name)[1] - base
        d.remove(name)
        if abs(took - TARGET_INIT_MS) < 15:
            break
        iterations = max(1, int(iterations * TARGET_INIT_MS / max(took, 1.0)))
    return iterations, base, took


DISPOSABLE = {"disposable": True, "replicaCountLimit": 16}


def _cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e6


def _seed_pid(d: Daemon, name: str) -> int:
    status = d.control("GET", "/v1/status").json()
    seeds = status.get("capabilities", {}).get("warmfork", {}).get("seed_processes", [])
    return next(int(s["pid"]) for s in seeds if s["function"] == name)


def _launcher_pid(d: Daemon) -> int:
    for pid in tree_pids(d.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"kernel.launcher" in f.read():
                    return pid
        except OSError:
            continue
    raise RuntimeError("no launcher process found")


class Loop:
    """A deployed function and one keep-alive connection to it."""

    def __init__(self, d: Daemon, name: str, code: str, worker: dict[str, Any]) -> None:
        self.d, self.name = d, name
        d.deploy(name, code, {"worker": worker})
        d.warm(name)
        self.conn = d.connect(name)
        self.samples: list[float] = []
        self.cold = bool(worker.get("disableSeed"))
        self.take(3, keep=False)

    def take(self, n: int, keep: bool = True) -> None:
        for _ in range(n):
            status, body, dt = self.conn.get("/")
            if status != 200:
                raise RuntimeError(f"{self.name}: HTTP {status}: {body[:200]!r}")
            if keep:
                self.samples.append(dt * 1000)
            if self.cold:
                time.sleep(0.05)  # let the previous cold worker's exit settle

    def close(self) -> None:
        self.conn.close()
        self.d.remove(self.name)


def interleaved(loops: list[Loop], runs: int, rounds: int = 5) -> None:
    """``runs`` samples per loop, taken in alternating chunks (they share the noise)."""
    per = max(1, runs // rounds)
    for r in range(rounds):
        for loop in loops:
            loop.take(per if r < rounds - 1 else runs - per * (rounds - 1))


def cpu_per_request(d: Daemon, loop: Loop, runs: int) -> dict[str, float]:
    """CPU ms per disposable request of the daemon, the launcher and the seed."""
    pids = {"daemon": d.proc.pid, "launcher": _launcher_pid(d), "seed": _seed_pid(d, loop.name)}
    before = {k: _cpu_ms(p) for k, p in pids.items()}
    loop.take(runs, keep=False)
    time.sleep(0.2)
    return {k: (_cpu_ms(p) - before[k]) / runs for k, p in pids.items()}


def idle_memory(d: Daemon, count: int) -> tuple[list[dict[str, int]], dict[str, int]]:
    """smaps_rollup of ``count`` idle forked instances of one trivial function and its seed."""
    profile = {"worker": {"reservationCount": count, "replicaCountLimit": count}}
    d.deploy("wfb-mem", sw_script(0), profile)
    try:
        d.warm("wfb-mem")
        ready = d.wait_instances("wfb-mem", count, timeout=60 + count)
        time.sleep(1.0)  # settle: post-fork page faults of the first request
        seed_pid, _ = seed_ready_ms(d, "wfb-mem")
        return [smaps_rollup(int(i["pid"])) for i in ready[:count]], smaps_rollup(seed_pid)
    finally:
        d.remove("wfb-mem")


def run(
    runs: int = 30, cold_runs: int = 10, instances: int = 10, workdir: Path | None = None
) -> dict[str, Any]:
    from bench.warmfork_launcher import bare_fork, fork_to_response

    tmp = workdir or Path(tempfile.mkdtemp(prefix="warmfork-bench-"))
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    figs["base.fork"] = figure(
        "warmfork.base.bare_fork",
        "baseline: os.fork() of a small Python process to its first byte",
        bare_fork(max(runs, 20)),
        "ms",
    )
    below = fork_to_response(runs)
    for key, label in (("hello", "Hello"), ("response", "response")):
        figs[f"launcher.{key}"] = figure(
            f"warmfork.launcher.{key}",
            f"no HTTP: fork_instance of a V8 seed to its {label} (trivial)",
            [r[key] for r in below],
            "ms",
        )
    figs["launcher.cpu"] = figure(
        "warmfork.launcher.instance_cpu",
        "no HTTP: CPU of the new instance until its first response",
        [r["cpu"] for r in below],
        "ms",
    )
    notes.append(
        "no HTTP: the new instance took a median of "
        f"{statistics.median(r['faults'] for r in below):.0f} minor page faults until its first "
        f"response; the seed's fork() took {statistics.median(r['seed_fork'] for r in below):.2f} ms"
    )
    calm = {"scaler_reactive": {"breaker": {"max_load": 1000.0}}}  # measure, even on a loaded box
    # "fork" figures fork on the request path: no spares, also not the ones disposable
    # functions get by default
    known = set(attrs.fields_dict(WarmforkConfig))
    no_spares = {"disposable_spares": 0} if "disposable_spares" in known else {}
    with (
        Daemon(tmp / "warm", BASE_PLUGINS, {"plugins": {**calm, "warmfork": no_spares}}) as d,
        Daemon(tmp / "spare", BASE_PLUGINS, {"plugins": {**calm, "warmfork": {"spares": 1}}}) as ds,
    ):
        iterations, base, took = calibrate(d)
        notes.append(
            f"init script: {iterations} iterations = {took:.0f} ms of top-level work in our seed "
            f"(trivial seed load {base:.0f} ms)"
        )
        for kind, iters in (("trivial", 0), ("init150", iterations)):
            code = sw_script(iters)
            cold = Loop(d, f"wfb-cold-{kind}", code, {**DISPOSABLE, "disableSeed": True})
            cold.take(cold_runs)
            cold.close()
            figs[f"cold.{kind}"] = figure(
                f"warmfork.cold.{kind}", f"cold process (disableSeed), {kind}", cold.samples, "ms"
            )
            loops = {
                f"running.{kind}": Loop(d, f"wfb-run-{kind}", code, {}),
                f"warmfork.{kind}": Loop(d, f"wfb-warm-{kind}", code, DISPOSABLE),
                f"spare.{kind}": Loop(ds, f"wfb-spare-{kind}", code, DISPOSABLE),
            }
            interleaved(list(loops.values()), runs)
            if kind == "trivial":
                cpu = cpu_per_request(d, loops["warmfork.trivial"], runs)
                notes.append(
                    "CPU per disposable warmfork request (trivial): "
                    + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu.items())
                    + " (instances' own CPU: see the no-HTTP figure)"
                )
            for loop in loops.values():
                loop.close()
            labels = {
                "running": f"request to a running instance (HTTP floor), {kind}",
                "warmfork": f"warmfork fork of the seed, {kind}",
                "spare": f"warmfork + pre-forked spares (spares = 1, disposable default), {kind}",
            }
            for fid, loop in loops.items():
                figs[fid] = figure(f"warmfork.{fid}", labels[fid.split(".")[0]], loop.samples, "ms")
            for fid in (f"warmfork.{kind}", f"spare.{kind}"):
                relate(figs[fid], figs[f"cold.{kind}"])
            limit = 3.0 if kind == "trivial" else 5.0
            goal(
                figs[f"warmfork.{kind}"],
                f"p50 <= {limit:g} ms and >= 20x faster than cold",
                lambda f, limit=limit: f["median"] <= limit and f["ratio"] <= 0.05,
            )
        mems, seed = idle_memory(d, instances)
    figs["memory.pss"] = figure(
        "warmfork.memory.pss", "idle forked instance PSS", [m["pss_kib"] / MIB for m in mems], "MiB"
    )
    figs["memory.private"] = figure(
        "warmfork.memory.private",
        "idle forked instance private",
        [m["private_kib"] / MIB for m in mems],
        "MiB",
    )
    goal(figs["memory.private"], "<= 2 MiB", lambda f: f["median"] <= 2.0)
    notes.append(
        f"seed of the memory function: RSS {seed['rss_kib'] / MIB:.1f} MiB, "
        f"PSS {seed['pss_kib'] / MIB:.1f} MiB, private {seed['private_kib'] / MIB:.1f} MiB "
        f"({instances} instances share it)"
    )
    return section("warmfork", list(figs.values()), notes)


def table(result: dict[str, Any]) -> str:
    rows = ["| figure | p50 | min | max | unit | ratio to cold | goal |", "|---|---|---|---|---|---|---|"]
    for f in result["figures"]:
        ratio = f"{f['ratio']:.3f} ({1 / f['ratio']:.0f}x faster)" if f.get("ratio") else ""
        g = f.get("goal")
        met = f"{g['text']}: {'met' if g['met'] else 'NOT met'}" if g else ""
        rows.append(
            f"| {f['label']} | {f['median']:.2f} | {f['min']:.2f} | {f['max']:.2f} | {f['unit']} "
            f"| {ratio} | {met} |"
        )
    return "\n".join(rows + [""] + [f"- {n}" for n in result.get("notes", [])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warmfork_bench")
    parser.add_argument("--runs", type=int, default=30, help="warmfork samples per figure")
    parser.add_argument("--cold-runs", type=int, default=10, help="cold-start samples per figure")
    parser.add_argument("--instances", type=int, default=10, help="idle instances for the memory figures")
    parser.add_argument("--json", help="write the section as JSON here")
    args = parser.parse_args(argv)
    result = run(args.runs, args.cold_runs, args.instances)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
