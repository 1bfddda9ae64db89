"""coldstart: a request arriving with no instance running, to its response.

Ours: disposable functions (``worker.disposable``: every request gets a fresh
instance) on one keep-alive connection, so each request starts an instance on its path:
warmfork (a fork of the function's seed, or a pre-forked spare of it: warmfork keeps
``disposable_spares`` of them) and cold (``worker.disableSeed``: a new process).
Requests are ``PAUSE`` apart, so each one arrives with no instance running: the
previous one has exited and its replacement spare is ready (back to back, a request
would share the two cores with the previous instance's exit and the refill; the
``disposable`` section measures that throughput). The floor, a request to an instance
that is already running, is measured with the same pause, and so are two references
without our kernel and runtime: a bare hypercorn+trio hello, and the fork-per-request design with nothing
else in it (``bench.apps.fork_ceiling``: a trivial STPyV8 seed, a fork or a pre-forked
spare per request; the design the warmfork goals were set from). Peers: process start of
workerd and of a Node http server to their first 200 (spawn, poll connect + GET every
0.5 ms, kill), after warm-ups (2 full, 1 quick).
"""

from __future__ import annotations

import time
from typing import Any

from bench import peers
from bench.common import KeepAlive, Skip, figure, first_200, goal, relate, section
from bench.context import Context
from bench.ours import BASE_PLUGINS, disposable_starts
from bench.workloads import sw_script

PAUSE = 0.05
"""Seconds between two timed requests of one function (see the module doc)."""


def peer_starts(ctx: Context, make: Any, name: str, runs: int) -> list[float]:
    """Seconds from spawn to first 200, ``runs`` times (after the warm-ups)."""
    out: list[float] = []
    for i in range(runs + ctx.params.warmups):
        server = make()
        t0 = time.perf_counter()
        server.start()
        try:
            dt = first_200(server.port, "localhost", t0, server.proc, timeout=30)
        except Exception as exc:
            raise Skip(f"{name}: {exc}; {server.log.read_text(errors='replace')[-300:]}") from exc
        finally:
            server.stop()
        if i >= ctx.params.warmups:
            out.append(dt * 1000)
    return out


def ours_disposable(ctx: Context, name: str, code: str, cold: bool, runs: int) -> list[float]:
    d = ctx.daemon(BASE_PLUGINS)
    profile = {"worker": {"disposable": True, "disableSeed": cold, "replicaCountLimit": 16}}
    return disposable_starts(d, name, code, profile, runs, ctx.params.warmups, pause=PAUSE)


def ours_running(ctx: Context, runs: int) -> list[float]:
    """Reference: the same request to an instance that is already running."""
    d = ctx.daemon(BASE_PLUGINS)
    d.deploy("cs-running", sw_script(0), {"worker": {"replicaCountLimit": 1}})
    try:
        d.warm("cs-running")
        return paused_gets(d.connect("cs-running"), runs)
    finally:
        d.remove("cs-running")


def paused_gets(conn: KeepAlive, runs: int) -> list[float]:
    """``runs`` GETs on ``conn``, ``PAUSE`` apart, in ms; closes ``conn``."""
    try:
        out = []
        for _ in range(runs):
            time.sleep(PAUSE)
            out.append(conn.get("/")[2] * 1000)
        return out
    finally:
        conn.close()


def bare_hello(ctx: Context, runs: int) -> list[float]:
    """Reference below ours: a bare hypercorn+trio ASGI hello (no kernel, no worker) on
    the same kind of keep-alive connection with the same pause, i.e. what the HTTP
    server alone costs on this machine."""
    server = peers.hypercorn_server(ctx.workdir("cs-bare"))
    t0 = time.perf_counter()
    server.start()
    try:
        first_200(server.port, "localhost", t0, server.proc, timeout=30)
        return warm_paused_gets(ctx, server.port, runs)
    finally:
        server.stop()


def fork_ceiling(ctx: Context, mode: str, runs: int) -> list[float]:
    """Reference: the fork-per-request design at its leanest (``bench.apps.fork_ceiling``:
    no Web runtime, no kernel), the same client and pause; ``mode`` fork or spare."""
    server = peers.fork_ceiling_server(ctx.workdir(f"cs-ceiling-{mode}"), mode).start_and_wait()
    try:
        return warm_paused_gets(ctx, server.port, runs)
    finally:
        server.stop()


def warm_paused_gets(ctx: Context, port: int, runs: int) -> list[float]:
    """A few warm-up GETs, then :func:`paused_gets` on a new keep-alive connection to ``port``."""
    conn = KeepAlive(port, "localhost")
    for _ in range(ctx.params.warmups + 3):
        conn.get("/")
    return paused_gets(conn, runs)


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    n_init = ctx.init_iterations
    figs: dict[str, dict[str, Any]] = {}
    notes = [f"init script: {n_init} loop iterations = {ctx.init_ms_node:.0f} ms of top-level work in Node"]

    def add(fid: str, label: str, samples: list[float]) -> None:
        figs[fid] = figure(f"coldstart.{fid}", label, samples, "ms")

    errors: list[str] = []
    for kind, iters in (("trivial", 0), ("init150", n_init)):
        for peer, make in (("node", peers.node_server), ("workerd", peers.workerd_server)):
            try:
                add(
                    f"{peer}.{kind}",
                    f"{peer} process start, {kind}",
                    peer_starts(
                        ctx,
                        lambda m=make, k=kind, it=iters, pr=peer: m(ctx.workdir(f"cs-{pr}-{k}"), it),
                        peer,
                        p.cold_runs,
                    ),
                )
            except Skip as exc:
                errors.append(str(exc))
        try:
            code = sw_script(iters)
            add(
                f"warmfork.{kind}",
                f"ours warmfork, {kind}",
                ours_disposable(ctx, f"cs-warm-{kind}", code, False, max(p.cold_runs, p.warm_runs)),
            )
            add(
                f"cold.{kind}",
                f"ours cold process, {kind}",
                ours_disposable(ctx, f"cs-cold-{kind}", code, True, p.cold_runs),
            )
        except Skip as exc:
            errors.append(str(exc))
    try:
        add("running", "ours, instance already running (floor)", ours_running(ctx, p.warm_runs))
    except Skip as exc:
        errors.append(str(exc))
    try:
        add("bare", "bare hypercorn+trio hello, same client and pause", bare_hello(ctx, p.warm_runs))
    except Skip as exc:
        errors.append(str(exc))
    for mode, label in (("fork", "a fork per request"), ("spare", "a pre-forked spare per request")):
        try:
            text = f"leanest fork-per-request server (no Web runtime, no kernel), {label}"
            add(f"ceiling.{mode}", text, fork_ceiling(ctx, mode, p.warm_runs))
        except Skip as exc:
            errors.append(str(exc))
    if not figs:
        raise Skip("; ".join(errors) or "nothing measured")

    for kind, limit in (("trivial", 3.0), ("init150", 5.0)):
        warm, cold, node = (figs.get(f"{k}.{kind}") for k in ("warmfork", "cold", "node"))
        if warm and cold:
            relate(warm, cold)
            goal(
                warm,
                f"p50 <= {limit:g} ms and >= 20x faster than cold (ratio <= 0.05)",
                lambda f, lim=limit: f["median"] <= lim and f["ratio"] <= 0.05,
            )
        elif warm and node:
            relate(warm, node)
        for fid in (f"cold.{kind}", f"workerd.{kind}"):
            if fid in figs and node:
                relate(figs[fid], node)
        if node:
            relate(node, node)
    if "running" in figs and "warmfork.trivial" in figs:
        relate(figs["running"], figs["warmfork.trivial"])
    for fid in ("bare", "ceiling.fork", "ceiling.spare"):
        if fid in figs and "warmfork.trivial" in figs:
            relate(figs[fid], figs["warmfork.trivial"])
    notes += errors
    return section("coldstart", list(figs.values()), notes)
