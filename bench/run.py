"""``python bench/run.py [--quick | --full] [--sections a,b]``: measure us against peers.

Writes ``bench/results/latest.json`` (schema: docs/benchmarks.md), ``latest.md`` (the
table, also printed at the end) and one PNG per section. A section that cannot run
records ``"skipped": "<reason>"`` instead of failing the run. Traffic goes to loopback
only; peers are installed under ``bench/.peers`` on first use.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import peers  # noqa: E402
from bench.common import RESULTS, Skip, git_info, machine_info, now_iso, skipped  # noqa: E402
from bench.context import FULL, QUICK, Context  # noqa: E402
from bench.report import markdown, plots  # noqa: E402
from bench.schema import SCHEMA_VERSION, SECTIONS, validate  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_section(ctx: Context, name: str) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        module = importlib.import_module(f"bench.sections.{name}")
        result = module.run(ctx)
    except Skip as exc:
        result = skipped(name, str(exc))
    except Exception as exc:  # a broken section must not lose the others' results
        detail = traceback.format_exc(limit=3)
        log(f"{name} failed:\n{detail}")
        result = skipped(name, f"failed: {type(exc).__name__}: {exc}"[:400])
    result["duration_s"] = round(time.monotonic() - t0, 1)
    status = (
        f"skipped ({result['skipped'][:120]})" if "skipped" in result else f"{len(result['figures'])} figures"
    )
    log(f"{name}: {status} in {result['duration_s']} s")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="every section briefly (under 2 minutes)")
    mode.add_argument("--full", action="store_true", help="the full run (default; under 10 minutes)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of: {', '.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    ap.add_argument(
        "--keep-tmp", action="store_true", help="keep the scratch dir (daemon logs, peer configs)"
    )
    ap.add_argument(
        "--render", type=Path, metavar="JSON", help="only re-render a result file's table and plots"
    )
    args = ap.parse_args(argv)
    if args.render:
        return render(json.loads(args.render.read_text()), args.out)
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    quick = args.quick
    ctx = Context("quick" if quick else "full", QUICK if quick else FULL)
    started = time.monotonic()
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mode": ctx.mode,
        **git_info(),
        "timestamp": now_iso(),
        "duration_s": 0.0,
        "machine": machine_info(),
        "sections": {},
    }
    log(f"mode {ctx.mode}, scratch {ctx.tmp}")
    try:
        try:
            ctx.init_iterations, ctx.init_ms_node = peers.calibrate_init(150.0)
            log(f"init script: {ctx.init_iterations} iterations = {ctx.init_ms_node:.0f} ms in Node")
        except Skip as exc:
            ctx.init_iterations = 300
            log(f"calibration skipped ({exc}); using {ctx.init_iterations} iterations")
        doc["init_script"] = {"iterations": ctx.init_iterations, "node_ms": round(ctx.init_ms_node, 1)}
        for name in names:
            log(f"{name} ...")
            doc["sections"][name] = run_section(ctx, name)
    finally:
        ctx.close(keep_tmp=args.keep_tmp)
    doc["duration_s"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(doc, indent=1) + "\n")
    return render(doc, args.out)


def render(doc: dict[str, Any], out: Path) -> int:
    """Validate ``doc``, write ``latest.md`` and the plots into ``out``, print the table."""
    errors = validate(doc)
    if errors:
        log("result does not match its schema:\n  " + "\n  ".join(errors))
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(doc)
    (out / "latest.md").write_text(table)
    written = plots(doc, out)
    log(f"wrote {out}/latest.md and {len(written)} plot(s) (run took {doc.get('duration_s')} s)")
    print(table)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
