"""Probe disposable-mode throughput: wrk -t2 -cN against one daemon, with baseline.

``python -m bench.disposable_probe [--conns 8,32] [--duration 3] [--spares 0|1]``
prints requests/s and p50 for a persistent (baseline) and a disposable trivial function
served by the same daemon, plus the warmfork/scheduler counters from ``/v1/status``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS, Daemon
from bench.workloads import sw_script


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", default="8,32")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--spares", type=int, default=None)
    ap.add_argument("--only", default="", help="persistent or disposable")
    ap.add_argument("--status", action="store_true")
    args = ap.parse_args()
    conns = [int(c) for c in args.conns.split(",")]
    config = {"plugins": {"warmfork": {"spares": args.spares}}} if args.spares is not None else None
    worker = {"replicaCountLimit": 16, "maxActivateRequests": 10}
    variants = {
        "persistent": {"worker": dict(worker)},
        "disposable": {"worker": {**worker, "disposable": True}},
    }
    with tempfile.TemporaryDirectory(prefix="disp-probe-") as tmp, Daemon(Path(tmp), BASE_PLUGINS, config) as d:
        for name, profile in variants.items():
            if args.only and name != args.only:
                continue
            d.deploy(name, sw_script(0), profile)
            d.warm(name)
            wrk(d.data_port, d.host(name), "/", duration=1.0, connections=conns[0])
            for c in conns:
                r = wrk(d.data_port, d.host(name), "/", duration=args.duration, connections=c)
                bad = r["non_2xx"] + r["socket_errors"]
                print(f"{name:11s} -c{c:<3d} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  bad {bad}")
        if args.status:
            st = d.control("GET", "/v1/status").json()
            print(json.dumps(st, indent=1)[:3000])


if __name__ == "__main__":
    main()
