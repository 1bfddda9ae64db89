"""isolation: instance start with each isolation layer on and off.

One daemon per configuration (the base plugins, plus one isolation plugin, plus all of
them); in each, a disposable trivial function measured like coldstart (every request
starts an instance on its path): warmfork, and cold (``worker.disableSeed``). The
baseline is the same measurement with no isolation plugin enabled, in the same run.
"""

from __future__ import annotations

from typing import Any

from bench.common import Skip, figure, relate, section
from bench.context import Context
from bench.ours import BASE_PLUGINS, ISOLATION_PLUGINS, plugin_available
from bench.workloads import sw_script

LAYERS: list[tuple[str, list[str]]] = [
    ("none", []),
    ("cgroup", ["isolation_cgroup"]),
    ("seccomp+creds", ["isolation_seccomp"]),
    ("namespaces", ["isolation_namespaces"]),
    ("all", ISOLATION_PLUGINS),
]


def _starts(ctx: Context, plugins: list[str], name: str, cold: bool, runs: int) -> list[float]:
    d = ctx.daemon(plugins)
    profile = {"worker": {"disposable": True, "disableSeed": cold, "replicaCountLimit": 16}}
    d.deploy(name, sw_script(0), profile)
    try:
        d.warm(name)
        conn = d.connect(name)
        out: list[float] = []
        try:
            for i in range(runs + 2):
                status, body, dt = conn.get("/")
                if status != 200:
                    raise Skip(f"{name}: HTTP {status}: {body[:200]!r}")
                if i >= 2:
                    out.append(dt * 1000)
        finally:
            conn.close()
        return out
    finally:
        d.remove(name)


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for layer, extra in LAYERS:
        missing = [x for x in extra if not plugin_available(x)]
        if missing:
            notes.append(f"{layer}: plugin(s) not built: {', '.join(missing)}")
            continue
        plugins = BASE_PLUGINS + extra
        for mode, cold, runs in (("warmfork", False, p.isolation_runs), ("cold", True, p.isolation_cold_runs)):
            try:
                samples = _starts(ctx, plugins, f"iso-{mode}", cold, runs)
            except Skip as exc:
                notes.append(f"{layer} {mode}: {exc}")
                continue
            figs[f"{mode}.{layer}"] = figure(
                f"isolation.{mode}.{layer.replace('+', '_')}", f"{mode} instance start, {layer}", samples, "ms"
            )
        if extra:
            ctx.stop_daemon(plugins)
    if not figs:
        raise Skip("; ".join(notes))
    for key, fig in figs.items():
        relate(fig, figs.get(key.split(".")[0] + ".none"))
    return section("isolation", list(figs.values()), notes)
