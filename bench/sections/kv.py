"""kv: get and set latency from JS and operations per second, through ``bench/kv_bench.py``.

Runs ``kv_bench.py js`` against the bench's own daemon (``kv_repeats`` times) and
``kv_bench.py backend`` (the floor: the LRU called in-process, no IPC, no JS) as the
baseline. Figures are the median/min/max of each run's p50 (and p99, ops/s).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from bench.common import BENCH, ROOT, Skip, clean_env, figure, goal, relate, section
from bench.context import Context
from bench.kvservers import KVServer, binary
from bench.ours import BASE_PLUGINS
from bench.peers import python_bin

SCRIPT = BENCH / "kv_bench.py"


def _kv_bench(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [python_bin(), str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env({"PYTHONPATH": str(ROOT)}),
        timeout=300,
    )
    if proc.returncode != 0:
        raise Skip(f"kv_bench.py {args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)[0]


def run(ctx: Context) -> dict[str, Any]:
    if not SCRIPT.exists():
        raise Skip("bench/kv_bench.py does not exist")
    p = ctx.params
    ops = str(p.kv_ops)
    backend = [_kv_bench(["backend", "--ops", ops]) for _ in range(p.kv_repeats)]
    d = ctx.daemon(BASE_PLUGINS)
    conn = ["--control", d.control_url, "--data", d.data_url, "--token", d.token]
    js = [_kv_bench(["js", "--ops", ops, *conn]) for _ in range(p.kv_repeats)]
    figs: list[dict[str, Any]] = []
    for op in ("get", "set"):
        for stat, unit, better in (
            ("p50_us", "us", "lower"),
            ("p99_us", "us", "lower"),
            ("ops_per_s", "ops/s", "higher"),
        ):
            base = figure(
                f"kv.backend.{op}.{stat}",
                f"backend in-process {op} {stat}",
                [r[op][stat] for r in backend],
                unit,
                better,
            )
            fig = figure(f"kv.js.{op}.{stat}", f"JS {op} {stat}", [r[op][stat] for r in js], unit, better)
            relate(fig, base)
            relate(base, base)
            figs += [fig, base]
    notes = [f"{ops} ops per run, {p.kv_repeats} runs, value 100 bytes"]
    figs += _redis_figures(ctx, ops, js, notes)
    return section("kv", figs, notes)


def _redis_figures(
    ctx: Context, ops: str, lru_js: list[dict[str, Any]], notes: list[str]
) -> list[dict[str, Any]]:
    """The same JS runs on a daemon whose KV is kv_redis on a local redis-server."""
    if binary("redis") is None:
        notes.append("kv_redis not measured: redis-server is not installed")
        return []
    server = KVServer("redis", ctx.workdir("kv-redis-server")).start()
    try:
        config = {"kv": {"backend": "redis"}, "plugins": {"kv_redis": {"url": server.url}}}
        d = ctx.daemon([*BASE_PLUGINS, "kv_redis"], config, key="kv_redis")
        conn = ["--control", d.control_url, "--data", d.data_url, "--token", d.token]
        runs = [_kv_bench(["js", "--ops", ops, *conn]) for _ in range(ctx.params.kv_repeats)]
        ctx.stop_daemon([*BASE_PLUGINS, "kv_redis"], key="kv_redis")
    finally:
        server.stop()
    figs = []
    for op in ("get", "set"):
        base = figure(
            f"kv.js.{op}.p50_us.lru", f"JS {op} p50, kv_lru", [r[op]["p50_us"] for r in lru_js], "us"
        )
        fig = figure(
            f"kv.js_redis.{op}.p50_us", f"JS {op} p50, kv_redis", [r[op]["p50_us"] for r in runs], "us"
        )
        relate(fig, base)
        relate(base, base)
        goal(fig, "within +0.2 ms of kv_lru", lambda f, b=base: f["median"] - b["median"] <= 200)
        figs += [fig, base]
    return figs
