"""isolation: instance start with each isolation layer on and off.

One daemon per configuration (the base plugins, plus one isolation plugin, plus all of
them); in each, a disposable trivial function measured like coldstart (every request
starts an instance on its path): warmfork, and cold (``worker.disableSeed``). The
baseline is the same measurement with no isolation plugin enabled, in the same run.
"""

from __future__ import annotations

from typing import Any

from bench.common import Skip, brief, figure, relate, section
from bench.context import Context
from bench.ours import BASE_PLUGINS, ISOLATION_PLUGINS, disposable_starts, plugin_available
from bench.workloads import sw_script

# (label, extra plugins, daemon config). isolation_seccomp alone runs workers as a
# non-root uid that cannot reach a venv under /root; uid 0 there still measures the
# filter, no_new_privs and the dropped capabilities. "all" has the real uid change.
LAYERS: list[tuple[str, list[str], dict[str, Any] | None]] = [
    ("none", [], None),
    ("cgroup", ["isolation_cgroup"], None),
    ("seccomp+caps (uid 0)", ["isolation_seccomp"], {"plugins": {"isolation_seccomp": {"user": "0:0"}}}),
    ("namespaces+rootfs", ["isolation_namespaces"], None),
    ("all (uid change)", ISOLATION_PLUGINS, None),
]


def _starts(ctx: Context, plugins: list[str], config: Any, name: str, cold: bool, runs: int) -> list[float]:
    d = ctx.daemon(plugins, config)
    profile = {"worker": {"disposable": True, "disableSeed": cold, "replicaCountLimit": 16}}
    return disposable_starts(d, name, sw_script(0), profile, runs, ctx.params.warmups)


def run(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for layer, extra, config in LAYERS:
        missing = [x for x in extra if not plugin_available(x)]
        if missing:
            notes.append(f"{layer}: plugin(s) not built: {', '.join(missing)}")
            continue
        plugins = BASE_PLUGINS + extra
        for mode, cold, runs in (
            ("warmfork", False, p.isolation_runs),
            ("cold", True, p.isolation_cold_runs),
        ):
            if runs <= 0:
                continue
            try:
                samples = _starts(ctx, plugins, config, f"iso-{mode}", cold, runs)
            except Skip as exc:
                notes.append(f"{layer} {mode}: {brief(exc)}")
                if "noslate serve" in str(exc):
                    break  # the daemon itself did not start with this layer
                continue
            figs[f"{mode}.{layer}"] = figure(
                f"isolation.{mode}.{layer.split()[0].replace('+', '_')}",
                f"{mode} instance start, {layer}",
                samples,
                "ms",
            )
        if extra:
            # One isolation daemon at a time: stopping a cgroup-enabled daemon currently
            # removes other live daemons' cgroup trees too (reported to isolation_cgroup).
            ctx.stop_daemon(plugins)
    if p.isolation_cold_runs <= 0:
        notes.append("cold starts per layer are measured in full mode only")
    if not figs:
        raise Skip("; ".join(notes))
    for key, fig in figs.items():
        relate(fig, figs.get(key.split(".")[0] + ".none"))
    return section("isolation", list(figs.values()), notes)
