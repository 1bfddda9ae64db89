"""Request-path profile: our daemon against a bare hypercorn + trio app, same run.

Starts ``noslate serve`` (port-0 loopback listeners, its own state dir), deploys the
shared conformance hello world, starts the bare ASGI app (``bench/apps/bare_asgi.py``)
under ``hypercorn --worker-class trio``, then alternates ``wrk`` runs against both
(throughput: ``-t2 -c32``; latency: ``-t1 -c1``) and sequential keep-alive requests.
Prints every figure with the ratio to the bare app from the same run.

    .venv/bin/python -m bench.profile_path [--duration 5] [--rounds 2] [--json]
    .venv/bin/python -m bench.profile_path --hold 60   # keep both up to attach py-spy
    .venv/bin/python -m bench.profile_path --before-tree /tmp/old   # A/B against older code

On a shared, loaded machine run it under ``nice -n -10`` and read the ratios (and
``front_cpu_us_per_req``, CPU time of the serving process per request), not the
absolute figures.

Optional: ``--warmfork-first N`` measures first-request latency through HTTP with no
instance running (deploy a fresh function, time its first request), N times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ours as bench_ours
from bench.common import ROOT, KeepAlive, pct, tree_pids
from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS, Daemon, cpu_seconds
from bench.peers import hypercorn_server

HELLO_JS = ROOT.parent / "shared" / "conformance" / "workers" / "sw-hello.js"
FALLBACK_JS = "addEventListener('fetch', (e) => e.respondWith(new Response('Hello, world!')));\n"


def hello_code() -> str:
    beside = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "workers" / "sw-hello.js"
    for path in (HELLO_JS, beside):
        if path.exists():
            return path.read_text()
    return FALLBACK_JS


def sequential(port: int, host: str, n: int) -> dict[str, float]:
    """``n`` sequential GETs on one keep-alive connection (after 50 warm-ups)."""
    conn = KeepAlive(port, host)
    try:
        for _ in range(50):
            conn.get()
        times = []
        for _ in range(n):
            status, _body, sec = conn.get()
            if status != 200:
                raise RuntimeError(f"{host}: HTTP {status}")
            times.append(sec * 1000)
    finally:
        conn.close()
    return {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(pct(times, 0.99), 3)}


def bare_pids(pid: int) -> list[int]:
    """The bare server's process and its hypercorn worker child (where requests run)."""
    return tree_pids(pid)


def instance_cpu(daemon: Daemon) -> dict[int, float]:
    """CPU seconds of every live instance of ``hello`` (scale-out adds instances)."""
    out = {}
    for inst in daemon.instances("hello"):
        pid = int(inst.get("pid") or 0)
        if pid:
            with contextlib.suppress(OSError):
                out[pid] = cpu_seconds(pid)
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two samples (an instance started in between counts from 0)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def first_requests(daemon: Daemon, code: str, n: int) -> list[float]:
    """Deploy ``n`` fresh functions; time each one's first request on a kept-alive connection."""
    out = []
    for i in range(n):
        name = f"first{i}"
        daemon.deploy(name, code)
        conn = daemon.connect(name)
        try:
            time.sleep(0.3)  # the seed is built at deploy; let the box settle
            status, _body, sec = conn.get()
            if status == 200:
                out.append(sec * 1000)
        finally:
            conn.close()
        daemon.remove(name)
    return out


def start_daemon(workdir: Path, code: str, profile: dict[str, Any], tree: Path | None = None) -> Daemon:
    """A daemon serving ``hello``; ``tree``: run another source tree (an A/B "before")."""
    # The breaker's load-average check would open on this shared, noisy box.
    config = {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}}
    daemon = Daemon(workdir, BASE_PLUGINS, config)
    saved = bench_ours.ROOT
    if tree is not None:  # PYTHONPATH and cwd (the launcher imports from its cwd) = tree
        bench_ours.ROOT = tree
    try:
        daemon.start()
    finally:
        bench_ours.ROOT = saved
    daemon.deploy("hello", code, profile)
    daemon.warm("hello")
    return daemon


def run(
    duration: float,
    rounds: int,
    hold: float,
    first: int,
    profile: dict[str, Any],
    before: Path | None,
    latency: bool = True,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="noslate-profile-"))
    code = hello_code()
    daemons: dict[str, Daemon] = {}
    bare = hypercorn_server(work / "bare")
    results: dict[str, Any] = {"rounds": []}
    try:
        daemons["ours"] = daemon = start_daemon(work / "daemon", code, profile)
        if before is not None:
            daemons["before"] = start_daemon(work / "before", code, profile, before)
        bare.start_and_wait()
        inst = daemon.instances("hello")
        results["pids"] = {
            "daemon": daemon.proc.pid,
            "bare": bare.pid,
            "instances": [i.get("pid") for i in inst],
        }
        print(json.dumps(results["pids"]), flush=True)
        if hold:
            print(f"holding {hold} s: daemon port {daemon.data_port}, bare port {bare.port}", flush=True)
            time.sleep(hold)
        targets = {}
        for key, d in daemons.items():
            targets[key] = (d.data_port, d.host("hello"), [d.proc.pid], d)
        targets["bare"] = (bare.port, "localhost", bare_pids(bare.pid), None)
        order = list(targets)
        for n_round in range(rounds):
            rnd: dict[str, Any] = {}
            # Rotate the order every round: a machine shared with other work drifts.
            shift = n_round % len(order)
            for key in order[shift:] + order[:shift]:
                port, host, front, d = targets[key]
                front0 = sum(cpu_seconds(p) for p in front)
                workers0 = instance_cpu(d) if d else {}
                tput = wrk(port, host, duration=duration, threads=2, connections=32)
                front1 = sum(cpu_seconds(p) for p in front)
                workers1 = instance_cpu(d) if d else {}
                n = max(1, tput["requests"])
                rnd[key] = {
                    "rps": tput["rps"],
                    "c32_p50_ms": tput["p50_ms"],
                    "c32_p99_ms": tput["p99_ms"],
                    "errors": tput["non_2xx"] + tput["socket_errors"],
                    "front_cpu_us_per_req": round((front1 - front0) / n * 1e6, 1),
                    "worker_cpu_us_per_req": round(cpu_delta(workers0, workers1) / n * 1e6, 1),
                    "instances": len(workers1),
                }
                if latency:
                    lat = wrk(port, host, duration=max(2.0, duration / 2), threads=1, connections=1)
                    seq = sequential(port, host, 500)
                    rnd[key].update(
                        c1_rps=lat["rps"],
                        c1_p50_ms=lat["p50_ms"],
                        c1_p99_ms=lat["p99_ms"],
                        seq_p50_ms=seq["p50_ms"],
                        seq_p99_ms=seq["p99_ms"],
                    )
            for key in daemons:
                sfx = "" if key == "ours" else f"_{key}"
                rnd[f"ratio_rps{sfx}"] = round(rnd[key]["rps"] / rnd["bare"]["rps"], 3)
                if latency:
                    rnd[f"ratio_c1_rps{sfx}"] = round(rnd[key]["c1_rps"] / rnd["bare"]["c1_rps"], 3)
            results["rounds"].append(rnd)
            print(json.dumps(rnd), flush=True)
        if first:
            samples = first_requests(daemon, code, first)
            if samples:
                results["first_request_ms"] = {
                    "p50": round(statistics.median(samples), 3),
                    "min": round(min(samples), 3),
                    "max": round(max(samples), 3),
                    "n": len(samples),
                }
                print(json.dumps({"first_request_ms": results["first_request_ms"]}), flush=True)
    finally:
        bare.stop()
        for d in daemons.values():
            d.stop()
    for key in ("ratio_rps", "ratio_c1_rps", "ratio_rps_before", "ratio_c1_rps_before"):
        values = [r[key] for r in results["rounds"] if key in r]
        if values:
            results[f"{key}_median"] = statistics.median(values)
            results[f"{key}_min"], results[f"{key}_max"] = min(values), max(values)
    for key in (*daemons, "bare"):
        for fig in ("front_cpu_us_per_req", "worker_cpu_us_per_req"):
            values = [r[key][fig] for r in results["rounds"] if key in r]
            if values:
                results[f"{key}_{fig}_median"] = statistics.median(values)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.profile_path")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk -c32 run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--hold", type=float, default=0.0, help="seconds to wait before measuring (attach py-spy)"
    )
    ap.add_argument("--first", type=int, default=0, help="first-request samples (fresh function each)")
    ap.add_argument("--profile", default="{}", help="profile JSON for the hello function")
    ap.add_argument("--json", action="store_true", help="print the whole result as JSON at the end")
    ap.add_argument(
        "--before-tree",
        type=Path,
        help="also run a daemon from this source tree (kernel/ + plugins/ of an older commit) for an A/B",
    )
    ap.add_argument(
        "--no-latency", action="store_true", help="throughput rounds only (no -c1 and sequential runs)"
    )
    args = ap.parse_args()
    res = run(
        args.duration,
        args.rounds,
        args.hold,
        args.first,
        json.loads(args.profile),
        args.before_tree,
        latency=not args.no_latency,
    )
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        summary = {k: v for k, v in res.items() if k.endswith(("_median", "_min", "_max"))}
        print(f"ratios to the bare app (median, min, max of rounds) and CPU: {json.dumps(summary)}")


if __name__ == "__main__":
    main()
