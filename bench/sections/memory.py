"""memory: PSS and private memory per idle instance, and for N instances of one function.

Ours: a trivial function with ``worker.reservationCount = N`` (N instances forked from
one seed, all idle), read from ``/proc/<pid>/smaps_rollup`` of each instance pid that
``GET /v1/instances`` lists; the seed is found by its process title. Cold instances
(``worker.disableSeed``) for comparison. Peers: one idle Node http server and one idle
workerd process (after one request each).
"""

from __future__ import annotations

import time
from typing import Any

from bench import peers
from bench.common import Skip, figure, goal, relate, section, smaps_rollup, tree_pids
from bench.context import Context
from bench.ours import BASE_PLUGINS, Daemon
from bench.workloads import sw_script

MIB = 1024.0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _instances(d: Daemon, name: str, count: int, timeout: float) -> tuple[list[dict[str, int]], list[int]]:
    ready = d.wait_instances(name, count, timeout)
    time.sleep(0.5)  # let them settle (post-fork GC, page faults of the first request)
    pids = [int(i["pid"]) for i in ready[:count]]
    return [smaps_rollup(p) for p in pids], pids


def peer_memory(ctx: Context, make: Any) -> dict[str, int]:
    server = make().start_and_wait()
    try:
        time.sleep(0.3)
        total = {"pss_kib": 0, "private_kib": 0, "rss_kib": 0}
        for pid in tree_pids(server.pid):  # workerd or node with any helper processes
            try:
                m = smaps_rollup(pid)
            except OSError:
                continue
            for k in total:
                total[k] += m[k]
        return total
    finally:
        server.stop()


def run(ctx: Context) -> dict[str, Any]:
    n = ctx.params.memory_instances
    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    d = ctx.daemon(BASE_PLUGINS)
    worker = {"reservationCount": n, "replicaCountLimit": n}
    profile = {"worker": worker, "resourceLimit": {"memory": 64 << 20}}
    d.deploy("mem-warm", sw_script(0), profile)
    try:
        d.warm("mem-warm")
        mems, _pids = _instances(d, "mem-warm", n, timeout=60 + n)
        seeds = [
            p for p in tree_pids(d.proc.pid) if "noslate:mem-warm@" in _cmdline(p) and "#seed" in _cmdline(p)
        ]
        seed = smaps_rollup(seeds[0]) if seeds else None
    finally:
        d.remove("mem-warm")
    figs["warm.pss"] = figure(
        "memory.warmfork.pss", "ours warmfork instance PSS", [m["pss_kib"] / MIB for m in mems], "MiB"
    )
    figs["warm.private"] = figure(
        "memory.warmfork.private",
        "ours warmfork instance private",
        [m["private_kib"] / MIB for m in mems],
        "MiB",
    )
    total = sum(m["pss_kib"] for m in mems) + (seed["pss_kib"] if seed else 0)
    figs["warm.total"] = figure(
        f"memory.warmfork.total{n}",
        f"ours: {n} instances + seed, total PSS",
        [total / MIB],
        "MiB",
        extra={"instances": n, "seed_pss_mib": round(seed["pss_kib"] / MIB, 2) if seed else None},
    )
    if seed:
        figs["seed.pss"] = figure("memory.seed.pss", "ours seed PSS", [seed["pss_kib"] / MIB], "MiB")
    else:
        notes.append("seed process not found by title; total excludes it")

    try:
        cold_n = 3
        d.deploy(
            "mem-cold",
            sw_script(0),
            {"worker": {"reservationCount": cold_n, "replicaCountLimit": cold_n, "disableSeed": True}},
        )
        try:
            d.warm("mem-cold")
            cold, _ = _instances(d, "mem-cold", cold_n, timeout=60)
        finally:
            d.remove("mem-cold")
        figs["cold.pss"] = figure(
            "memory.cold.pss", "ours cold instance PSS", [m["pss_kib"] / MIB for m in cold], "MiB"
        )
        figs["cold.private"] = figure(
            "memory.cold.private", "ours cold instance private", [m["private_kib"] / MIB for m in cold], "MiB"
        )
    except Skip as exc:
        notes.append(f"cold: {exc}")

    for peer, make in (
        ("node", lambda: peers.node_server(ctx.workdir("mem-node"))),
        ("workerd", lambda: peers.workerd_server(ctx.workdir("mem-workerd"))),
    ):
        try:
            samples = [peer_memory(ctx, make) for _ in range(2)]
        except Skip as exc:
            notes.append(f"{peer}: {exc}")
            continue
        figs[f"{peer}.pss"] = figure(
            f"memory.{peer}.pss", f"{peer} idle process PSS", [s["pss_kib"] / MIB for s in samples], "MiB"
        )
        figs[f"{peer}.private"] = figure(
            f"memory.{peer}.private",
            f"{peer} idle process private",
            [s["private_kib"] / MIB for s in samples],
            "MiB",
        )
    relate(figs["warm.private"], figs.get("cold.private") or figs.get("node.private"))
    relate(figs["warm.pss"], figs.get("node.pss"))
    goal(figs["warm.private"], "<= 2 MiB private per idle instance", lambda f: f["median"] <= 2.0)
    if "node.pss" in figs:
        node_n = figure(
            f"memory.node.x{n}",
            f"node x{n} processes (extrapolated from one)",
            [figs["node.pss"]["median"] * n],
            "MiB",
            extra={"extrapolated": True},
        )
        figs["node.xn"] = node_n
        relate(figs["warm.total"], node_n)
        relate(node_n, node_n)
    for key in ("node.pss", "node.private"):
        if key in figs:
            relate(figs[key], figs[key])
    for key in ("cold.pss", "cold.private", "workerd.pss", "workerd.private", "seed.pss"):
        if key in figs:
            relate(figs[key], figs.get("node." + key.split(".")[1]))
    return section("memory", list(figs.values()), notes)
