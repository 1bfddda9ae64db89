"""warmfork: first request with no instance running, cold vs seed fork; idle memory.

Measures (never asserts) through HTTP on one keep-alive connection to a real
``noslate serve`` (runtime_v8 + warmfork), with disposable functions so every request
starts a new instance on its path:

* ``warmfork.trivial`` / ``warmfork.init150``: fork of the function's seed;
* ``spare.*``: the same with one pre-forked spare (``[plugins.warmfork] spares = 1``);
* ``cold.*``: ``worker.disableSeed`` (a new Python + V8 process per request);
* ``memory.*``: PSS and private memory of idle instances forked from one seed
  (``/proc/<pid>/smaps_rollup``), and of the seed itself.

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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import figure, relate, section, smaps_rollup  # noqa: E402
from bench.ours import BASE_PLUGINS, Daemon  # noqa: E402
from bench.workloads import sw_script  # noqa: E402

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


def first_requests(d: Daemon, name: str, code: str, cold: bool, runs: int, warmups: int = 3) -> list[float]:
    """ms per request of a disposable function on one keep-alive connection."""
    profile = {"worker": {"disposable": True, "disableSeed": cold, "replicaCountLimit": 16}}
    d.deploy(name, code, profile)
    try:
        d.warm(name)
        conn = d.connect(name)
        out: list[float] = []
        try:
            for i in range(runs + warmups):
                status, body, dt = conn.get("/")
                if status != 200:
                    raise RuntimeError(f"{name}: HTTP {status}: {body[:200]!r}")
                if i >= warmups:
                    out.append(dt * 1000)
                if cold:
                    time.sleep(0.05)  # let the previous cold worker's exit settle
        finally:
            conn.close()
        return out
    finally:
        d.remove(name)


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
    tmp = workdir or Path(tempfile.mkdtemp(prefix="warmfork-bench-"))
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    calm = {"scaler_reactive": {"breaker": {"max_load": 1000.0}}}  # measure, even on a loaded box
    with (
        Daemon(tmp / "warm", BASE_PLUGINS, {"plugins": calm}) as d,
        Daemon(tmp / "spare", BASE_PLUGINS, {"plugins": {**calm, "warmfork": {"spares": 1}}}) as ds,
    ):
        iterations, base, took = calibrate(d)
        notes.append(
            f"init script: {iterations} iterations = {took:.0f} ms of top-level work in our seed "
            f"(trivial seed load {base:.0f} ms)"
        )
        for kind, iters in (("trivial", 0), ("init150", iterations)):
            code = sw_script(iters)
            figs[f"cold.{kind}"] = figure(
                f"warmfork.cold.{kind}",
                f"cold process (disableSeed), {kind}",
                first_requests(d, f"wfb-cold-{kind}", code, True, cold_runs),
                "ms",
            )
            figs[f"warmfork.{kind}"] = figure(
                f"warmfork.fork.{kind}",
                f"warmfork fork of the seed, {kind}",
                first_requests(d, f"wfb-warm-{kind}", code, False, runs),
                "ms",
            )
            figs[f"spare.{kind}"] = figure(
                f"warmfork.spare.{kind}",
                f"warmfork + 1 pre-forked spare, {kind}",
                first_requests(ds, f"wfb-spare-{kind}", code, False, runs),
                "ms",
            )
            for fid in (f"warmfork.{kind}", f"spare.{kind}"):
                relate(figs[fid], figs[f"cold.{kind}"])
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
    notes.append(
        f"seed of the memory function: RSS {seed['rss_kib'] / MIB:.1f} MiB, "
        f"PSS {seed['pss_kib'] / MIB:.1f} MiB, private {seed['private_kib'] / MIB:.1f} MiB "
        f"({instances} instances share it)"
    )
    return section("warmfork", list(figs.values()), notes)


def table(result: dict[str, Any]) -> str:
    rows = ["| figure | p50 | min | max | unit | ratio to cold |", "|---|---|---|---|---|---|"]
    for f in result["figures"]:
        ratio = f"{f['ratio']:.3f} ({1 / f['ratio']:.0f}x faster)" if f.get("ratio") else ""
        rows.append(
            f"| {f['label']} | {f['median']:.2f} | {f['min']:.2f} | {f['max']:.2f} | {f['unit']} | {ratio} |"
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
