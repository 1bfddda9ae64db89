"""``python -m bench.simulator``: compare scaling policies on a trace.

Examples::

    python -m bench.simulator generate --functions 40 --out /tmp/trace.csv
    python -m bench.simulator run --trace /tmp/trace.csv --minutes 240
    python -m bench.simulator run --trace invocations_per_function_md.anon.d01.csv \\
        --functions 200 --minutes 1440 --policies water-level ema keepalive
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .sim import SimOptions, simulate
from .trace import read_azure, synthetic, write_azure

COLUMNS = [
    ("policy", "{}"),
    ("requests", "{}"),
    ("cold_start_ratio", "{:.4f}"),
    ("fn_cold_p75", "{:.3f}"),
    ("queued_ratio", "{:.4f}"),
    ("p99_wait_ms", "{:.1f}"),
    ("max_wait_ms", "{:.0f}"),
    ("instance_seconds", "{:.0f}"),
    ("mean_instances", "{:.2f}"),
    ("starts", "{}"),
    ("rejected", "{}"),
]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(f.format(r[c]) for c, f in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate", help="write a synthetic trace in the Azure CSV format")
    gen.add_argument("--functions", type=int, default=40)
    gen.add_argument("--minutes", type=int, default=1440)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--out", required=True)
    run = sub.add_parser("run", help="replay a trace under each policy")
    run.add_argument("--trace", help="Azure-format CSV (default: a synthetic trace)")
    run.add_argument("--functions", type=int, default=None, help="sample this many rows")
    run.add_argument("--minutes", type=int, default=120)
    run.add_argument("--start-minute", type=int, default=0)
    run.add_argument("--policies", nargs="+", default=["water-level", "ema", "keepalive"])
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="POLICY:KEY=VALUE",
        help="a policy option, e.g. keepalive:min_keepalive=60",
    )
    run.add_argument("--cold-start", type=float, default=0.25)
    run.add_argument("--duration", type=float, default=0.3, help="median request seconds")
    run.add_argument("--mar", type=int, default=10, help="maxActivateRequests")
    run.add_argument("--seed", type=int, default=3)
    run.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if args.cmd == "generate":
        write_azure(args.out, synthetic(args.functions, args.minutes, args.seed))
        print(f"wrote {args.functions} functions x {args.minutes} minutes to {args.out}")
        return 0

    if args.trace:
        traces = read_azure(
            args.trace, minutes=args.minutes, start_minute=args.start_minute, functions=args.functions
        )
    else:
        traces = [t for t in synthetic(args.functions or 40, args.minutes) if t.total]
    options: dict[str, dict[str, float]] = {}
    for item in args.option:
        policy, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        options.setdefault(policy, {})[key] = float(value)
    opts = SimOptions(
        cold_start=args.cold_start,
        duration_median=args.duration,
        max_activate_requests=args.mar,
        seed=args.seed,
    )
    rows = []
    for policy in args.policies:
        t0 = time.perf_counter()
        row = simulate(traces, policy, options.get(policy), opts)
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"{policy}: {row['requests']} requests in {row['wall_s']} s", file=sys.stderr)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
