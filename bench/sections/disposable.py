"""disposable: a fresh instance for every request (``worker.disposable``).

``wrk -t2 -c8`` against a disposable trivial function: warmfork (each request forks the
seed), warmfork with one pre-forked spare (``[plugins.warmfork] spares = 1``), and cold
(``worker.disableSeed``). Baseline: the same function with persistent instances at the
same concurrency, in the same daemon.
"""

from __future__ import annotations

from typing import Any

from bench.common import Skip, figure, goal, relate, section
from bench.context import Context
from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS
from bench.workloads import sw_script

CONNECTIONS = 8


def measure(ctx: Context, plugins: list[str], config: dict[str, Any] | None, key: str, name: str,
            profile: dict[str, Any], duration: float, repeats: int, conns: int) -> dict[str, Any]:  # fmt: skip
    d = ctx.daemon(plugins, config, key)
    d.deploy(name, sw_script(0), profile)
    try:
        d.warm(name)
        wrk(d.data_port, d.host(name), "/", duration=1.0, connections=conns)
        runs = [wrk(d.data_port, d.host(name), "/", duration=duration, connections=conns) for _ in range(repeats)]
    finally:
        d.remove(name)
    return {
        "rps": [r["rps"] for r in runs],
        "p50": [r["p50_ms"] for r in runs],
        "bad": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
    }


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    worker = {"replicaCountLimit": 16, "maxActivateRequests": 10}
    variants = [
        ("persistent", "persistent instances (baseline)", None, "", {"worker": dict(worker)}, p.wrk_repeats,
         CONNECTIONS),
        ("warmfork", "disposable, warmfork", None, "", {"worker": {**worker, "disposable": True}}, p.wrk_repeats,
         CONNECTIONS),
        ("warmfork_spare", "disposable, warmfork + 1 spare", {"plugins": {"warmfork": {"spares": 1}}}, "spare",
         {"worker": {**worker, "disposable": True}}, p.wrk_repeats, CONNECTIONS),
        ("cold", "disposable, cold process (wrk -c2)", None, "",
         {"worker": {**worker, "disposable": True, "disableSeed": True}}, 1, 2),
    ]  # fmt: skip
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = [f"wrk -t2 -c{CONNECTIONS}"]
    for vid, label, config, key, profile, repeats, conns in variants:
        try:
            r = measure(ctx, BASE_PLUGINS, config, key, f"disp-{vid.replace('_', '-')}", profile,
                        max(3.0, p.disposable_duration) if vid == "cold" else p.disposable_duration,
                        repeats, conns)  # fmt: skip
        except Skip as exc:
            notes.append(f"{vid}: {exc}")
            continue
        if not all(r["rps"]):
            notes.append(f"{vid}: no request completed within a wrk run")
            continue
        extra = {"non_2xx_or_socket_errors": r["bad"]} if r["bad"] else None
        if extra:
            notes.append(f"{vid}: {r['bad']} non-2xx or socket errors")
        figs[f"{vid}.rps"] = figure(f"disposable.{vid}.rps", label, r["rps"], "req/s", "higher", extra)
        figs[f"{vid}.p50"] = figure(f"disposable.{vid}.p50", f"{label} p50", r["p50"], "ms")
    ctx.stop_daemon(BASE_PLUGINS, "spare")
    if not figs:
        raise Skip("; ".join(notes))
    for kind in ("rps", "p50"):
        base = figs.get(f"persistent.{kind}")
        for vid, *_ in variants:
            if f"{vid}.{kind}" in figs:
                relate(figs[f"{vid}.{kind}"], base)
    for vid in ("warmfork", "warmfork_spare"):
        if f"{vid}.rps" in figs:
            goal(figs[f"{vid}.rps"], ">= 400 req/s", lambda f: f["median"] >= 400)
    return section("disposable", list(figs.values()), notes)
