"""Probe disposable-mode throughput: wrk -t2 -cN against one daemon, with its baseline.

    .venv/bin/python -m bench.disposable_probe [--conns 8,32] [--duration 3] [--spares 1]
        [--disposable-spares 0] [--plugins isolation_cgroup] [--boost] [--cpu] [--rounds 2]

Deploys a trivial persistent function (the same-run baseline) and a disposable one in
one ``noslate serve``, and prints requests/s and p50 per ``wrk -t2 -cN`` run. ``--cpu``
adds CPU milliseconds per request of the daemon, the launcher, the seed and the
instances (reaped by the seed: its children's time) and the seed's run-queue wait
(``/proc/<pid>/schedstat``). ``--boost`` lowers the autogroup nice of the daemon's and
the launcher's sessions to -10 (root): on a machine shared with other work the launcher's
session (seed + instances) otherwise gets one session's share of the CPUs, which hides
what the code costs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS, Daemon
from bench.workloads import sw_script

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu(pid: int) -> tuple[float, float, float]:
    """(own CPU ms, reaped children's CPU ms, run-queue wait ms)."""
    f = _stat(pid)
    with open(f"/proc/{pid}/schedstat") as s:
        wait = int(s.read().split()[1]) / 1e6
    return (int(f[11]) + int(f[12])) * 1000 / TICK, (int(f[13]) + int(f[14])) * 1000 / TICK, wait


def _seed_pid(d: Daemon, function: str) -> int:
    def find(o: Any) -> Any:
        if isinstance(o, dict):
            if "seed_processes" in o:
                return o["seed_processes"]
            for v in o.values():
                if (r := find(v)) is not None:
                    return r
        return None

    seeds = find(d.control("GET", "/v1/status").json()) or []
    return next((s["pid"] for s in seeds if s["function"] == function), 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", default="8,32")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--spares", type=int, default=None)
    ap.add_argument("--disposable-spares", type=int, default=None)
    ap.add_argument("--only", default="", help="persistent or disposable")
    ap.add_argument("--boost", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--seed-nice", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--plugins", default="", help="extra plugins, e.g. isolation_cgroup")
    args = ap.parse_args()
    conns = [int(c) for c in args.conns.split(",")]
    warmfork: dict[str, int] = {}
    if args.spares is not None:
        warmfork["spares"] = args.spares
    if args.disposable_spares is not None:
        warmfork["disposable_spares"] = args.disposable_spares
    config = {"plugins": {"warmfork": warmfork}} if warmfork else None
    worker = {"replicaCountLimit": 16, "maxActivateRequests": 10}
    variants = {
        "persistent": {"worker": dict(worker)},
        "disposable": {"worker": {**worker, "disposable": True}},
    }
    with (
        tempfile.TemporaryDirectory(prefix="disp-probe-") as tmp,
        Daemon(Path(tmp), BASE_PLUGINS + [p for p in args.plugins.split(",") if p], config) as d,
    ):
        names = [n for n in variants if not args.only or n == args.only]
        for name in names:
            d.deploy(name, sw_script(0), variants[name])
            d.warm(name)
        seed = _seed_pid(d, "disposable")
        launcher = int(_stat(seed)[1]) if seed else 0
        if args.boost:
            for pid in (d.proc.pid, launcher):
                with open(f"/proc/{pid}/autogroup", "w") as f:
                    f.write("-10")
        if args.seed_nice is not None:
            os.setpriority(os.PRIO_PROCESS, seed, args.seed_nice)
        for _ in range(args.rounds):
            for name in names:
                wrk(
                    d.data_port,
                    d.host(name),
                    "/",
                    duration=1.0,
                    connections=conns[0],
                    threads=min(2, conns[0]),
                )
                for c in conns:
                    pids = {"daemon": d.proc.pid, "launcher": launcher, "seed": _seed_pid(d, name)}
                    before = {k: _cpu(p) for k, p in pids.items() if p}
                    r = wrk(
                        d.data_port,
                        d.host(name),
                        "/",
                        duration=args.duration,
                        connections=c,
                        threads=min(2, c),
                    )
                    after = {k: _cpu(p) for k, p in pids.items() if p}
                    bad = r["non_2xx"] + r["socket_errors"]
                    print(f"{name:11s} -c{c:<3d} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  bad {bad}")
                    if args.cpu and r["rps"]:
                        n = r["rps"] * args.duration
                        parts = [f"{k} {(after[k][0] - before[k][0]) / n:.2f}" for k in before]
                        if "seed" in before:
                            parts.append(f"instances {(after['seed'][1] - before['seed'][1]) / n:.2f}")
                            parts.append(f"seed-runq-wait {(after['seed'][2] - before['seed'][2]) / n:.2f}")
                        print("    CPU ms/request: " + ", ".join(parts))


if __name__ == "__main__":
    main()
