"""KV micro-benchmark: get/set latency (p50, p99) and operations per second.

Two modes, both printing one JSON document (and a short table on stderr):

``backend``
    Calls the kv_lru backend directly in this process (the floor: no IPC, no JS).
``js``
    Deploys a JS function on a daemon and times ``store.get`` / ``store.set`` inside
    the worker with ``performance.now()`` (each op is a ``Call`` frame to the daemon
    and back). ``--spawn`` starts a private ``noslate serve`` on loopback with a temp
    state dir; otherwise ``--control`` / ``--data`` / ``--token`` name a running one.
    ``--concurrency C`` runs C requests at once (C instances, maxActivateRequests 1)
    to measure aggregate ops/s with several writers.

    .venv/bin/python bench/kv_bench.py backend
    .venv/bin/python bench/kv_bench.py js --spawn --ops 2000 --concurrency 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JS = """
export default {
  async fetch(request) {
    const q = new URL(request.url).searchParams;
    const n = Number(q.get("n") || 1000), size = Number(q.get("size") || 100);
    const tag = q.get("tag") || "0";
    const store = await noslate.kvStorages.open("bench");
    const value = new Uint8Array(size).fill(120);
    const set = [], get = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      await store.set(tag + ":" + (i % 1024), value);
      set.push(performance.now() - a);
    }
    const t1 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      await store.get(tag + ":" + (i % 1024));
      get.push(performance.now() - a);
    }
    const t2 = performance.now();
    return new Response(JSON.stringify({ set, get, set_ms: t1 - t0, get_ms: t2 - t1 }),
      { headers: { "content-type": "application/json" } });
  },
};
"""


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def summary(lat_ms: list[float], total_ms: float) -> dict[str, float]:
    """p50/p99/mean in microseconds and ops/s."""
    return {
        "n": len(lat_ms),
        "p50_us": round(pct(lat_ms, 0.5) * 1000, 2),
        "p99_us": round(pct(lat_ms, 0.99) * 1000, 2),
        "mean_us": round(statistics.fmean(lat_ms) * 1000, 2),
        "ops_per_s": round(len(lat_ms) / (total_ms / 1000), 1) if total_ms > 0 else 0.0,
    }


# ---- backend mode --------------------------------------------------------------------


def bench_backend(ops: int, size: int) -> dict[str, Any]:
    """Time ``call_sync`` get/set on a fresh LRUBackend."""
    from plugins.kv_lru.backend import LRUBackend

    b = LRUBackend()
    b.call_sync("bench", "kv.open", ["s", {}])
    value = b"x" * size
    out: dict[str, Any] = {"mode": "backend", "ops": ops, "value_bytes": size}
    for op in ("kv.set", "kv.get"):
        lat: list[float] = []
        t0 = time.perf_counter()
        for i in range(ops):
            args = ["s", f"k{i % 1024}", value, None] if op == "kv.set" else ["s", f"k{i % 1024}"]
            a = time.perf_counter()
            b.call_sync("bench", op, args)
            lat.append((time.perf_counter() - a) * 1000)
        out[op.split(".")[1]] = summary(lat, (time.perf_counter() - t0) * 1000)
    return out


# ---- js mode -------------------------------------------------------------------------


PLUGINS = "routing_host,scaler_reactive,kv_lru,outbound_http,runtime_v8,warmfork"


def spawn_daemon(
    tmp: Path, plugins: str, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """Start ``noslate serve`` on port-0 loopback listeners; return (proc, control, data, token).

    The addresses are read from ``<state_dir>/daemon.json``, written once it serves.
    """
    token = "bench-" + os.urandom(8).hex()
    state = tmp / "state"
    conf = tmp / "noslate.toml"
    enabled = ", ".join(f'"{p.strip()}"' for p in plugins.split(",") if p.strip())
    conf.write_text(
        f'[server]\nstate_dir = "{state}"\n[control]\ntoken = "{token}"\n[plugins]\nenabled = [{enabled}]\n'
    )
    noslate = shutil.which("noslate", path=str(ROOT / ".venv" / "bin")) or "noslate"
    with open(tmp / "daemon.log", "wb") as log:
        proc = subprocess.Popen(
            [noslate, "serve", "--config", str(conf), "--data-bind", "127.0.0.1:0",
             "--control-bind", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_text = (tmp / "daemon.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"noslate serve exited with status {proc.returncode}:\n{log_text}")
        try:
            info = json.loads((state / "daemon.json").read_text())
            return proc, info["control_url"], info["data_url"], token
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"noslate serve did not start within {timeout} s")


def bench_js(control: str, data: str, token: str, ops: int, size: int, conc: int) -> dict[str, Any]:
    """Deploy the bench function and collect in-worker timings of ``conc`` concurrent requests."""
    name = "kvbench" + os.urandom(3).hex()
    auth = {"authorization": f"Bearer {token}"}
    profile = {"name": name, "worker": {"maxActivateRequests": 1}, "resourceLimit": {"memory": 128 << 20}}
    r = httpx.put(
        f"{control}/v1/functions/{name}",
        json={"code": JS, "filename": "bench.mjs", "profile": profile},
        headers=auth,
        timeout=60,
    )
    r.raise_for_status()
    host = data.split("//", 1)[1]
    port = host.rsplit(":", 1)[1]

    def one(tag: int, n: int) -> dict[str, Any]:
        resp = httpx.get(
            f"{data}/?n={n}&size={size}&tag={tag}",
            headers={"host": f"{name}.localhost:{port}"},
            timeout=300,
        )
        if resp.status_code != 200:
            raise SystemExit(f"bench request failed: {resp.status_code} {resp.text}")
        return resp.json()

    try:
        for tag in range(conc):  # warm-up: starts instances, opens the store, JIT
            one(tag, 200)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            runs = list(pool.map(lambda t: one(t, ops), range(conc)))
        wall_ms = (time.perf_counter() - t0) * 1000
    finally:
        httpx.delete(f"{control}/v1/functions/{name}", headers=auth, timeout=30)
    out: dict[str, Any] = {"mode": "js", "ops": ops, "value_bytes": size, "concurrency": conc}
    for op in ("set", "get"):
        lat = [x for run in runs for x in run[op]]
        busy = max(run[f"{op}_ms"] for run in runs)
        out[op] = summary(lat, busy)
    out["wall_ms"] = round(wall_ms, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["backend", "js", "all"])
    ap.add_argument("--ops", type=int, default=2000, help="gets and sets per request (default 2000)")
    ap.add_argument("--size", type=int, default=100, help="value bytes (default 100)")
    ap.add_argument("--concurrency", type=int, default=1, help="concurrent requests in js mode")
    ap.add_argument("--spawn", action="store_true", help="start a private daemon for js mode")
    ap.add_argument("--plugins", default=PLUGINS, help=f"plugins of the spawned daemon (default {PLUGINS})")
    ap.add_argument("--control", default=os.environ.get("NOSLATE_CONTROL", "http://127.0.0.1:8081"))
    ap.add_argument("--data", default="http://127.0.0.1:8080")
    ap.add_argument("--token", default=os.environ.get("NOSLATE_CONTROL_TOKEN", ""))
    args = ap.parse_args(argv)
    results = []
    if args.mode in ("backend", "all"):
        results.append(bench_backend(args.ops * 10, args.size))
    if args.mode in ("js", "all"):
        proc = None
        tmp = Path(tempfile.mkdtemp(prefix="kvbench-"))
        try:
            control, data, token = args.control, args.data, args.token
            if args.spawn:
                proc, control, data, token = spawn_daemon(tmp, args.plugins)
            results.append(bench_js(control, data, token, args.ops, args.size, args.concurrency))
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    for r in results:
        for op in ("set", "get"):
            s = r[op]
            print(
                f"{r['mode']:8} {op}: p50 {s['p50_us']:9.1f} us  p99 {s['p99_us']:9.1f} us  "
                f"{s['ops_per_s']:10.0f} ops/s",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
