"""disposable: a fresh instance for every request (``worker.disposable``).

``wrk -t2 -c8`` against a disposable trivial function: warmfork as configured by
default (``disposable_spares = 2``: requests take pre-forked, warmed spares, refilled
in the background), warmfork without spares (``disposable_spares = 0``: every request
forks the seed on its path), and cold (``worker.disableSeed``). Baseline: the same
function with persistent instances at the same concurrency, in the same daemon. Plus
the scaler's burst case: 50 concurrent requests (one connection each) at a freshly
deployed function with no instance, against the same burst once its instances run
(latency per request; makespan in extra). Reference: the same ``wrk`` runs against the
fork-per-request design with nothing else in it (``bench.apps.fork_ceiling``: a trivial
STPyV8 seed, no Web runtime, no kernel), a fork or a pre-forked spare per request.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import peers
from bench.common import KeepAlive, Skip, cpu_delta, figure, goal, relate, section, tree_cpu_ms
from bench.context import Context
from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS
from bench.workloads import sw_script

CONNECTIONS = 8
BURST = 50
OUR_ROLES = ("daemon", "launcher", "seed_fork", "instances")
"""Our processes by depth below the daemon (instances: a seed's reaped children)."""
LEAN_ROLES = ("server", "seed_fork", "children")


def measure(
    ctx: Context,
    plugins: list[str],
    config: dict[str, Any] | None,
    key: str,
    name: str,
    profile: dict[str, Any],
    duration: float,
    repeats: int,
    conns: int,
) -> dict[str, Any]:
    d = ctx.daemon(plugins, config, key)
    d.deploy(name, sw_script(0), profile)
    try:
        d.warm(name)
        return wrk_runs(d.data_port, d.host(name), duration, repeats, conns, d.proc.pid)
    finally:
        d.remove(name)


def wrk_runs(port: int, host: str, duration: float, repeats: int, conns: int, root: int) -> dict[str, Any]:
    """One 1 s warm-up ``wrk`` run, then ``repeats`` measured ones; ``cpu``: CPU ms per
    request of the server process ``root`` and its descendants, by depth below it."""
    wrk(port, host, "/", duration=1.0, connections=conns)
    before = tree_cpu_ms(root)
    runs = [wrk(port, host, "/", duration=duration, connections=conns) for _ in range(repeats)]
    spent = cpu_delta(before, tree_cpu_ms(root))
    served = sum(r["requests"] for r in runs)
    return {
        "rps": [r["rps"] for r in runs],
        "p50": [r["p50_ms"] for r in runs],
        "bad": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
        "cpu": {depth: ms / served for depth, ms in spent.items()} if served else {},
    }


def cpu_figure(fid: str, label: str, cpu: dict[int, float], roles: tuple[str, ...]) -> dict[str, Any]:
    """Total CPU ms per request of a server's process tree; ``extra`` names each depth
    (``roles``; the last role takes every deeper level)."""
    parts = {role: 0.0 for role in roles}
    for depth, ms in cpu.items():
        parts[roles[min(depth, len(roles) - 1)]] += ms
    extra = {f"{role}_ms": round(ms, 3) for role, ms in parts.items()}
    total = [sum(parts.values())]
    return figure(f"disposable.{fid}.cpu", f"{label}: CPU per request", total, "ms", extra=extra)


def fork_ceiling(ctx: Context, mode: str, duration: float, repeats: int) -> dict[str, Any]:
    """The same ``wrk`` runs against the leanest fork-per-request server
    (``bench.apps.fork_ceiling``: a trivial STPyV8 seed, no Web runtime, no kernel)."""
    server = peers.fork_ceiling_server(ctx.workdir(f"disp-ceiling-{mode}"), mode).start_and_wait()
    try:
        return wrk_runs(server.port, "localhost", duration, repeats, CONNECTIONS, server.pid)
    finally:
        server.stop()


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    worker = {"replicaCountLimit": 16, "maxActivateRequests": 10}
    variants = [
        (
            "persistent",
            "persistent instances (baseline)",
            None,
            "",
            {"worker": dict(worker)},
            p.wrk_repeats,
            CONNECTIONS,
        ),
        (
            "warmfork",
            "disposable, warmfork (default: 2 warmed spares)",
            None,
            "",
            {"worker": {**worker, "disposable": True}},
            p.wrk_repeats,
            CONNECTIONS,
        ),
        (
            "warmfork_nospare",
            "disposable, warmfork, no spares (fork on the request path)",
            {"plugins": {"warmfork": {"disposable_spares": 0}}},
            "nospare",
            {"worker": {**worker, "disposable": True}},
            p.wrk_repeats,
            CONNECTIONS,
        ),
        (
            "cold",
            "disposable, cold process (wrk -c2)",
            None,
            "",
            {"worker": {**worker, "disposable": True, "disableSeed": True}},
            1,
            2,
        ),
    ]
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = [f"wrk -t2 -c{CONNECTIONS}"]
    for vid, label, config, key, profile, repeats, conns in variants:
        try:
            r = measure(
                ctx,
                BASE_PLUGINS,
                config,
                key,
                f"disp-{vid.replace('_', '-')}",
                profile,
                max(2.0, p.disposable_duration) if vid == "cold" else p.disposable_duration,
                repeats,
                conns,
            )
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
        if r["cpu"] and vid.startswith("warmfork"):
            figs[f"{vid}.cpu"] = cpu_figure(vid, label, r["cpu"], OUR_ROLES)
    for key in {v[3] for v in variants if v[3]}:
        ctx.stop_daemon(BASE_PLUGINS, key)  # the variants with their own daemon
    for mode, label in (("fork", "a fork per request"), ("spare", "a pre-forked spare per request")):
        try:
            r = fork_ceiling(ctx, mode, p.disposable_duration, p.wrk_repeats)
        except Skip as exc:
            notes.append(f"ceiling ({mode}): {exc}")
            continue
        if all(r["rps"]) and not r["bad"]:
            fid = f"ceiling_{mode}"
            text = f"leanest fork-per-request server (no Web runtime, no kernel), {label}"
            figs[f"{fid}.rps"] = figure(f"disposable.{fid}.rps", text, r["rps"], "req/s", "higher")
            figs[f"{fid}.p50"] = figure(f"disposable.{fid}.p50", f"{text} p50", r["p50"], "ms")
            if r["cpu"]:
                figs[f"{fid}.cpu"] = cpu_figure(fid, text, r["cpu"], LEAN_ROLES)
        else:
            notes.append(f"ceiling ({mode}): {r['bad']} non-2xx or socket errors, or no request completed")
    if not figs:
        raise Skip("; ".join(notes))
    for kind in ("rps", "p50"):
        base = figs.get(f"persistent.{kind}")
        for vid in [v[0] for v in variants] + ["ceiling_fork", "ceiling_spare"]:
            if f"{vid}.{kind}" in figs:
                relate(figs[f"{vid}.{kind}"], base)
    if "warmfork.rps" in figs and "ceiling_fork.rps" in figs:
        ours, lean = figs["warmfork.rps"]["median"], figs["ceiling_fork.rps"]["median"]
        notes.append(f"ours (default warmfork) / leanest fork-per-request server: {ours / lean:.2f}")
    cores = os.cpu_count() or 1
    notes.append(
        f"CPU budget per request at 400 req/s on {cores} cores: {cores * 1000 / 400:.1f} ms, "
        "shared with the load generator (the .cpu figures count the server's processes only)"
    )
    for vid in ("warmfork", "warmfork_nospare"):
        if f"{vid}.rps" in figs:
            goal(figs[f"{vid}.rps"], ">= 400 req/s", lambda f: f["median"] >= 400)
    try:
        extra_figs = burst(ctx)
    except Skip as exc:
        notes.append(f"burst: {exc}")
        extra_figs = []
    return section("disposable", list(figs.values()) + extra_figs, notes)


def _burst(d: Any, name: str, size: int) -> tuple[float, list[float], int]:
    """``size`` concurrent requests, each on its own connection: (makespan s, latencies ms, non-200)."""
    barrier = threading.Barrier(size)

    def one(_: int) -> tuple[int, float]:
        conn = KeepAlive(d.data_port, d.host(name), timeout=60)
        try:
            barrier.wait(10)
            status, _body, dt = conn.get("/")
            return status, dt * 1000
        finally:
            conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(size) as pool:
        results = list(pool.map(one, range(size)))
    return time.perf_counter() - t0, [r[1] for r in results], sum(1 for r in results if r[0] != 200)


def burst(ctx: Context, size: int = BURST) -> list[dict[str, Any]]:
    """A burst of ``size`` concurrent requests at a function with no instance, then warm."""
    d = ctx.daemon(BASE_PLUGINS)
    d.deploy("disp-burst", sw_script(0), {"worker": {"replicaCountLimit": 10, "maxActivateRequests": 10}})
    try:
        before = queue_wait(d, "disp-burst")
        cold_span, cold_lat, cold_bad = _burst(d, "disp-burst", size)
        middle = queue_wait(d, "disp-burst")
        warm_span, warm_lat, warm_bad = _burst(d, "disp-burst", size)
        after = queue_wait(d, "disp-burst")
    finally:
        d.remove("disp-burst")
    cold_wait, warm_wait = wait_summary(before, middle), wait_summary(middle, after)
    extra_cold = {"non_200": cold_bad, "makespan_ms": round(cold_span * 1000, 1), **cold_wait}
    extra_warm = {"non_200": warm_bad, "makespan_ms": round(warm_span * 1000, 1), **warm_wait}
    cold = figure(
        "disposable.burst50.cold",
        f"burst of {size} at no instance: latency",
        cold_lat,
        "ms",
        extra=extra_cold,
    )
    warm = figure(
        "disposable.burst50.warm",
        f"burst of {size}, instances running: latency",
        warm_lat,
        "ms",
        extra=extra_warm,
    )
    relate(cold, warm)
    relate(warm, warm)
    figs = [cold, warm]
    if "queue_wait_mean_ms" in cold_wait:
        figs.append(
            figure(
                "disposable.burst50.cold.queue_wait",
                f"burst of {size} at no instance: queue wait, mean (daemon histogram)",
                [cold_wait["queue_wait_mean_ms"]],
                "ms",
                extra={k: v for k, v in cold_wait.items() if k != "queue_wait_mean_ms"},
            )
        )
    return figs


def queue_wait(d: Any, function: str) -> dict[str, float]:
    """``noslate_queue_wait_seconds`` of ``function`` from the daemon's /metrics:
    cumulative bucket counts by upper bound, plus ``sum`` and ``count``."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(d.control("GET", "/metrics").text):
        if family.name != "noslate_queue_wait_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("function") == function:
                key = sample.labels.get("le") or sample.name.rsplit("_", 1)[1]  # bound, sum, count
                out[key] = sample.value
    return out


def wait_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean queue wait (ms) between two scrapes, and the bucket bounds (ms) that hold
    the median and the 99th percentile (the histogram's resolution)."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    if count <= 0:
        return {}
    out = {"queue_wait_mean_ms": round((after["sum"] - before.get("sum", 0.0)) / count * 1000, 2)}
    bounds = sorted((float(b), b) for b in after if b not in ("sum", "count"))
    for q, key in ((0.5, "queue_wait_p50_le_ms"), (0.99, "queue_wait_p99_le_ms")):
        for value, b in bounds:
            if after[b] - before.get(b, 0.0) >= q * count:
                if value != float("inf"):  # beyond the last bound: not stated
                    out[key] = round(value * 1000, 3)
                break
    return out
