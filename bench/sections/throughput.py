"""throughput: hello world and a ~50 KB server-side render under ``wrk -t2 -c32``.

Systems: our daemon (runtime_v8 + warmfork, default scaling), a bare ASGI app under
``hypercorn --worker-class trio -w 1`` (the baseline: the front door's own ceiling), a
Node http server and workerd, each serving the same page. Each system gets a 1 s
warm-up, then ``wrk_repeats`` runs; figures are the median/min/max over runs.
"""

from __future__ import annotations

from typing import Any

from bench import peers
from bench.common import Skip, figure, goal, relate, section
from bench.context import Context
from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS
from bench.workloads import sw_script

PATHS = {"hello": "/", "ssr": "/ssr"}


def measure(ctx: Context, port: int, host: str) -> dict[str, dict[str, list[float]]]:
    p = ctx.params
    out: dict[str, dict[str, list[float]]] = {}
    for work, path in PATHS.items():
        if work == "hello" or ctx.mode == "full":
            wrk(port, host, path, duration=1.0)  # warm-up (JIT, scale-out)
        runs = [wrk(port, host, path, duration=p.wrk_duration) for _ in range(p.wrk_repeats)]
        out[work] = {
            "bad": [float(sum(r["non_2xx"] + r["socket_errors"] for r in runs))],
            "rps": [r["rps"] for r in runs],
            "p50": [r["p50_ms"] for r in runs],
            "p99": [r["p99_ms"] for r in runs],
        }
    return out


def run(ctx: Context) -> dict[str, Any]:
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    notes: list[str] = []
    systems: list[tuple[str, Any]] = [
        ("hypercorn", lambda: peers.hypercorn_server(ctx.workdir("tp-hypercorn"))),
        ("node", lambda: peers.node_server(ctx.workdir("tp-node"))),
        ("workerd", lambda: peers.workerd_server(ctx.workdir("tp-workerd"))),
    ]
    for name, make in systems:
        try:
            server = make().start_and_wait()
        except Skip as exc:
            notes.append(f"{name}: {exc}")
            continue
        try:
            results[name] = measure(ctx, server.port, "localhost")
        except Skip as exc:
            notes.append(f"{name}: {exc}")
        finally:
            server.stop()
    try:
        d = ctx.daemon(BASE_PLUGINS)
        d.deploy("tp", sw_script(0))
        try:
            d.warm("tp")
            results["ours"] = measure(ctx, d.data_port, d.host("tp"))
            notes.append(f"ours: {len(d.instances('tp'))} instance(s) after the runs")
        finally:
            d.remove("tp")
    except Skip as exc:
        notes.append(f"ours: {exc}")
    if not results:
        raise Skip("; ".join(notes) or "nothing measured")

    labels = {
        "hypercorn": "bare hypercorn+trio",
        "ours": "ours (daemon)",
        "node": "node http",
        "workerd": "workerd",
    }
    figs: list[dict[str, Any]] = []
    for work in PATHS:
        base: dict[str, dict[str, Any]] = {}
        for sysname in ("hypercorn", "ours", "node", "workerd"):
            if sysname not in results:
                continue
            r = results[sysname][work]
            extra = {"non_2xx_or_socket_errors": int(r["bad"][0])} if r["bad"][0] else None
            rps = figure(
                f"throughput.{work}.{sysname}.rps",
                f"{labels[sysname]} {work}",
                r["rps"],
                "req/s",
                "higher",
                extra,
            )
            if extra:
                notes.append(
                    f"{sysname} {work}: {extra['non_2xx_or_socket_errors']} non-2xx or socket errors"
                )
            p50 = figure(f"throughput.{work}.{sysname}.p50", f"{labels[sysname]} {work} p50", r["p50"], "ms")
            p99 = figure(f"throughput.{work}.{sysname}.p99", f"{labels[sysname]} {work} p99", r["p99"], "ms")
            if sysname == "hypercorn":
                base = {"rps": rps, "p50": p50, "p99": p99}
            for key, fig in (("rps", rps), ("p50", p50), ("p99", p99)):
                relate(fig, base.get(key))
            if sysname == "ours" and work == "hello":
                goal(rps, "ratio to bare hypercorn+trio >= 0.8", lambda f: f["ratio"] >= 0.8)
            figs += [rps, p50, p99]
    return section("throughput", figs, notes)
