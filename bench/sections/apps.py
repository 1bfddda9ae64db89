"""apps: real bundles (built here with esbuild from npm packages), hot forks and workerd.

Bundles: React 18 ``renderToString`` of 100 product rows (``bench/apps/react_entry.js``)
and a Hono JSON API with logger, cors and etag middleware (``bench/apps/hono_entry.js``).

Ours (runtime_v8 + warmfork), with and without ``worker.warmup``: each round deploys a
new version (an env var changes) with ``reservationCount: 1``, waits until its instance
(a fork of the new seed) is ready, then times its 1st, 2nd and 3rd requests on one
keep-alive connection: what a user hitting a fresh instance sees. Then the steady p50
of sequential keep-alive requests. Goal (issue #16): the first request of a new fork,
warm-up on, within 1.5x the steady p50. ``first_after_deploy``: from the start of the
deploy call to the first 200 (seed load, warm-up, fork, request), against workerd's
spawn-to-first-response for the same bundle (a new process per measurement).
"""

from __future__ import annotations

import time
from typing import Any

from bench import bundle, peers
from bench.common import KeepAlive, Skip, figure, first_200, goal, relate, section
from bench.context import Context
from bench.ours import BASE_PLUGINS

APPS = {
    "react": ("React 18 SSR, 100 items", bundle.REACT_ENTRY, bundle.REACT_PACKAGES, "/"),
    "hono": ("Hono JSON API (logger, cors, etag)", bundle.HONO_ENTRY, bundle.HONO_PACKAGES, "/"),
}
WARMUP = 3
"""Warm-up requests (the page itself, this many times) when warm-up is on."""
STEADY = 200


def _source(ctx: Context, app: str) -> str:
    _label, entry, packages, _path = APPS[app]
    return bundle.build(ctx.workdir("apps-bundles"), entry, packages, f"{app}.js")


def _rounds(ctx: Context, app: str, warm: bool, rounds: int) -> dict[str, list[float]]:
    """Per round: deploy-to-first-200 of a new version, then ms of the 1st/2nd/3rd
    request of a fresh fork (reserved instance of the next version)."""
    _label, _entry, _packages, path = APPS[app]
    d = ctx.daemon(BASE_PLUGINS)
    code = _source(ctx, app)
    name = f"app-{app}-{'warm' if warm else 'cold'}"
    out: dict[str, list[float]] = {"first": [], "second": [], "third": [], "after_deploy": [], "steady": []}
    warmup = [{"path": path}] * WARMUP if warm else []
    for r in range(rounds + ctx.params.warmups):
        worker = {"replicaCountLimit": 1, "warmup": warmup}
        env = [{"key": "ROUND", "value": f"{r}-{time.monotonic_ns()}"}]
        t0 = time.perf_counter()
        d.deploy(name, code, {"worker": worker, "environments": env})
        after = first_200(d.data_port, d.host(name), t0, None, timeout=60) * 1000
        # a fresh fork: the one reserved instance of the next version (a new seed)
        env = [{"key": "ROUND", "value": f"{r}-{time.monotonic_ns()}-r"}]
        d.deploy(name, code, {"worker": {**worker, "reservationCount": 1}, "environments": env})
        version = d.control("GET", f"/v1/functions/{name}").json().get("version")
        d.wait_instances(name, 1, 60.0, version)
        conn = d.connect(name)
        try:
            fresh = [conn.get(path)[2] * 1000 for _ in range(3)]
            if r == rounds + ctx.params.warmups - 1:
                out["steady"] = [conn.get(path)[2] * 1000 for _ in range(STEADY)]
        finally:
            conn.close()
        if r >= ctx.params.warmups:
            out["after_deploy"].append(after)
            out["first"].append(fresh[0])
            out["second"].append(fresh[1])
            out["third"].append(fresh[2])
    d.remove(name)
    return out


def _workerd(ctx: Context, app: str, rounds: int) -> dict[str, list[float]]:
    _label, _entry, _packages, path = APPS[app]
    code = _source(ctx, app)
    spawn: list[float] = []
    steady: list[float] = []
    for r in range(rounds + ctx.params.warmups):
        server = peers.workerd_script_server(ctx.workdir(f"apps-workerd-{app}"), code)
        t0 = time.perf_counter()
        server.start()
        try:
            dt = first_200(server.port, "localhost", t0, server.proc, timeout=30) * 1000
            if r == rounds + ctx.params.warmups - 1:
                conn = KeepAlive(server.port, "localhost")
                try:
                    for _ in range(20):
                        conn.get(path)
                    steady = [conn.get(path)[2] * 1000 for _ in range(STEADY)]
                finally:
                    conn.close()
        finally:
            server.stop()
        if r >= ctx.params.warmups:
            spawn.append(dt)
    return {"spawn": spawn, "steady": steady}


def run(ctx: Context) -> dict[str, Any]:
    rounds = max(3, ctx.params.cold_runs // 3)
    figs: list[dict[str, Any]] = []
    notes: list[str] = [f"{rounds} rounds per mode; warm-up on = the page, {WARMUP} times"]
    for app, (label, *_rest) in APPS.items():
        try:
            peer = _workerd(ctx, app, rounds)
        except Skip as exc:
            peer = None
            notes.append(f"{app}: workerd not measured: {exc}")
        w_steady = w_spawn = None
        if peer is not None:
            w_steady = figure(
                f"apps.{app}.workerd.steady_ms", f"{label}: workerd steady p50", peer["steady"], "ms"
            )
            w_spawn = figure(
                f"apps.{app}.workerd.spawn_ms",
                f"{label}: workerd spawn to first response",
                peer["spawn"],
                "ms",
            )
            figs += [w_steady, w_spawn]
        for warm in (False, True):
            mode = "warmup" if warm else "nowarmup"
            got = _rounds(ctx, app, warm, rounds)
            steady = figure(
                f"apps.{app}.{mode}.steady_ms", f"{label}: ours steady p50 ({mode})", got["steady"], "ms"
            )
            relate(steady, w_steady)
            figs.append(steady)
            for nth in ("first", "second", "third"):
                fig = figure(
                    f"apps.{app}.{mode}.fresh_fork_{nth}_ms",
                    f"{label}: {nth} request of a new fork ({mode})",
                    got[nth],
                    "ms",
                )
                relate(fig, steady)
                if warm and nth == "first":
                    goal(fig, "<= 1.5x the steady p50 (ratio)", lambda f: f["ratio"] <= 1.5)
                figs.append(fig)
            after = figure(
                f"apps.{app}.{mode}.first_after_deploy_ms",
                f"{label}: deploy call to first response ({mode})",
                got["after_deploy"],
                "ms",
            )
            relate(after, w_spawn)
            if warm:
                goal(after, "<= workerd spawn-to-first-response (ratio <= 1)", lambda f: f["ratio"] <= 1.0)
            figs.append(after)
    return section("apps", figs, notes)
