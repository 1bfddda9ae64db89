"""snapshot: start to first response with and without the runtime_node startup snapshot.

Measured like coldstart: a disposable function (every request starts an instance on
its path) with ``runtime = "nodejs"``, in a daemon with ``[plugins.runtime_node]
snapshot = true`` and one with ``false``; trivial code and a realistic ~500 KB bundle
(hono + handlebars + markdown-it, ``bench/bundle.py``). Warmfork (runtime_v8) with the
same code stands next to them. Baseline: the same code without the snapshot.
"""

from __future__ import annotations

from typing import Any

from bench.bundle import build
from bench.common import Skip, brief, figure, goal, relate, section
from bench.context import Context
from bench.ours import BASE_PLUGINS, disposable_starts, plugin_available
from bench.workloads import sw_script

NODE_PLUGINS = [*BASE_PLUGINS, "runtime_node"]


def _starts(ctx: Context, plugins: list[str], config: Any, key: str, name: str, code: str,
            runtime: str, runs: int) -> list[float]:  # fmt: skip
    d = ctx.daemon(plugins, config, key)
    profile = {"runtime": runtime, "worker": {"disposable": True, "replicaCountLimit": 16}}
    return disposable_starts(d, name, code, profile, runs, ctx.params.warmups, warm_timeout=20)


def run(ctx: Context) -> dict[str, Any]:
    if not plugin_available("runtime_node"):
        raise Skip(
            "runtime_node plugin is not registered yet (no noslate.plugins entry point or no plugin.py)"
        )
    runs = ctx.params.cold_runs
    bundle = build(ctx.workdir("bundle"))
    codes = {"trivial": sw_script(0), "bundle": bundle}
    figs: dict[str, dict[str, Any]] = {}
    notes = [f"bundle: {len(bundle) // 1024} KiB (hono + handlebars + markdown-it, esbuild iife)"]
    for snap in (True, False):
        label = "snapshot" if snap else "no snapshot"
        config = {"plugins": {"runtime_node": {"snapshot": snap}}}
        for kind, code in codes.items():
            try:
                samples = _starts(
                    ctx, NODE_PLUGINS, config, f"snap{snap}", f"snap-{kind}", code, "nodejs", runs
                )
            except Skip as exc:
                notes.append(f"nodejs {label} {kind}: {brief(exc)}")
                if "noslate serve" in str(exc) or "no answer" in str(exc):
                    break  # the daemon did not start, or this runtime hangs: skip its other cases
                continue
            fid = f"{'snapshot' if snap else 'nosnapshot'}.{kind}"
            figs[fid] = figure(f"snapshot.{fid}", f"nodejs {label}, {kind}", samples, "ms")
        ctx.stop_daemon(NODE_PLUGINS, f"snap{snap}")
    for kind, code in codes.items():
        try:
            samples = _starts(ctx, BASE_PLUGINS, None, "", f"snap-v8-{kind}", code, "aworker", runs)
            figs[f"warmfork.{kind}"] = figure(
                f"snapshot.warmfork.{kind}", f"aworker warmfork, {kind}", samples, "ms"
            )
        except Skip as exc:
            notes.append(f"warmfork {kind}: {brief(exc)}")
    if not figs:
        raise Skip("; ".join(notes))
    for kind in codes:
        base = figs.get(f"nosnapshot.{kind}")
        if base:
            relate(base, base)
        for fid in (f"snapshot.{kind}", f"warmfork.{kind}"):
            if fid in figs:
                relate(figs[fid], base)
    if "snapshot.bundle" in figs and figs["snapshot.bundle"]["ratio"] is not None:
        goal(
            figs["snapshot.bundle"],
            ">= 2x faster than no snapshot (ratio <= 0.5)",
            lambda f: f["ratio"] <= 0.5,
        )
    return section("snapshot", list(figs.values()), notes)
