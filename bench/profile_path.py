"""Request-path profile: our daemon against a bare hypercorn + trio app, same run.

Starts ``noslate serve`` (port-0 loopback listeners, its own state dir), deploys the
shared conformance hello world, starts the bare ASGI app (``bench/apps/bare_asgi.py``)
under ``hypercorn --worker-class trio``, then alternates ``wrk`` runs against both
(throughput: ``-t2 -c32``; latency: ``-t1 -c1``) and sequential keep-alive requests.
Prints every figure with the ratio to the bare app from the same run.

    .venv/bin/python -m bench.profile_path [--duration 5] [--rounds 2] [--json]
    .venv/bin/python -m bench.profile_path --hold 60   # keep both up to attach py-spy

Optional: ``--warmfork-first N`` measures first-request latency through HTTP with no
instance running (deploy a fresh function, time its first request), N times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, KeepAlive, pct, tree_pids
from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS, Daemon, cpu_seconds
from bench.peers import hypercorn_server

HELLO_JS = ROOT.parent / "shared" / "conformance" / "workers" / "sw-hello.js"
FALLBACK_JS = "addEventListener('fetch', (e) => e.respondWith(new Response('Hello, world!')));\n"


def hello_code() -> str:
    for path in (HELLO_JS, Path("/work/shared/conformance/workers/sw-hello.js")):
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


def run(duration: float, rounds: int, hold: float, first: int, profile: dict[str, Any]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="noslate-profile-"))
    code = hello_code()
    # The breaker's load-average check would open on this shared, noisy box.
    config = {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}}
    daemon = Daemon(work / "daemon", BASE_PLUGINS, config)
    bare = hypercorn_server(work / "bare")
    results: dict[str, Any] = {"rounds": []}
    try:
        daemon.start()
        bare.start_and_wait()
        daemon.deploy("hello", code, profile)
        daemon.warm("hello")
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
        inst_pids = [int(i["pid"]) for i in inst if i.get("pid")]
        targets = {
            "ours": (daemon.data_port, daemon.host("hello"), [daemon.proc.pid], inst_pids),
            "bare": (bare.port, "localhost", bare_pids(bare.pid), []),
        }
        for _ in range(rounds):
            rnd: dict[str, Any] = {}
            for key, (port, host, front, workers) in targets.items():
                cpu0 = [sum(cpu_seconds(p) for p in front), sum(cpu_seconds(p) for p in workers)]
                tput = wrk(port, host, duration=duration, threads=2, connections=32)
                cpu1 = [sum(cpu_seconds(p) for p in front), sum(cpu_seconds(p) for p in workers)]
                n = max(1, tput["requests"])
                lat = wrk(port, host, duration=max(2.0, duration / 2), threads=1, connections=1)
                seq = sequential(port, host, 500)
                rnd[key] = {
                    "rps": tput["rps"],
                    "c32_p50_ms": tput["p50_ms"],
                    "c32_p99_ms": tput["p99_ms"],
                    "c1_rps": lat["rps"],
                    "c1_p50_ms": lat["p50_ms"],
                    "c1_p99_ms": lat["p99_ms"],
                    "seq_p50_ms": seq["p50_ms"],
                    "seq_p99_ms": seq["p99_ms"],
                    "errors": tput["non_2xx"] + tput["socket_errors"],
                    "front_cpu_us_per_req": round((cpu1[0] - cpu0[0]) / n * 1e6, 1),
                    "worker_cpu_us_per_req": round((cpu1[1] - cpu0[1]) / n * 1e6, 1),
                }
            rnd["ratio_rps"] = round(rnd["ours"]["rps"] / rnd["bare"]["rps"], 3)
            rnd["ratio_c1_rps"] = round(rnd["ours"]["c1_rps"] / rnd["bare"]["c1_rps"], 3)
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
        daemon.stop()
    ratios = [r["ratio_rps"] for r in results["rounds"]]
    if ratios:
        results["ratio_rps_median"] = statistics.median(ratios)
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
    args = ap.parse_args()
    res = run(args.duration, args.rounds, args.hold, args.first, json.loads(args.profile))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"throughput ratio (ours/bare, median of rounds): {res.get('ratio_rps_median')}")


if __name__ == "__main__":
    main()
