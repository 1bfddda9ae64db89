"""The bench's result schema and table on a synthetic result (no timing is measured here)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import figure, goal, relate, section, skipped  # noqa: E402
from bench.loadgen import parse  # noqa: E402
from bench.report import markdown, plots  # noqa: E402
from bench.schema import SCHEMA_VERSION, validate  # noqa: E402

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:4000/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.50ms    3.00ms  40.00ms   80.00%
  Latency Distribution
     50%  850.00us
     75%   13.00ms
     90%   15.00ms
     99%    1.20s
  2400 requests in 1.00s, 300.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   2399.50
Transfer/sec:    300.00KB
"""


def synthetic() -> dict[str, Any]:
    base = figure("throughput.hello.hypercorn.rps", "bare hello", [2500, 2400, 2600], "req/s", "higher")
    ours = figure("throughput.hello.ours.rps", "ours hello", [2000, 1900, 2100], "req/s", "higher")
    relate(ours, base)
    relate(base, base)
    goal(ours, "ratio >= 0.8", lambda f: f["ratio"] >= 0.8)
    return {
        "schema_version": SCHEMA_VERSION,
        "mode": "quick",
        "commit": "0" * 40,
        "dirty": False,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "duration_s": 1.0,
        "machine": {"cores": 2, "cpu": "test", "memory_gib": 24, "kernel": "6", "loadavg": [0, 0, 0]},
        "sections": {
            "throughput": section("throughput", [base, ours], ["a note"]),
            "snapshot": skipped("snapshot", "runtime_node plugin not built"),
        },
    }


def test_synthetic_result_is_valid_and_ratios_come_from_the_same_run() -> None:
    doc = synthetic()
    assert validate(doc) == []
    ours = doc["sections"]["throughput"]["figures"][1]
    assert ours["median"] == 2000 and ours["min"] == 1900 and ours["max"] == 2100
    assert ours["baseline"] == "throughput.hello.hypercorn.rps"
    assert ours["ratio"] == 0.8
    assert ours["goal"] == {"text": "ratio >= 0.8", "met": True}
    json.dumps(doc)  # serialisable as written to latest.json


def test_schema_errors_name_their_path() -> None:
    doc = synthetic()
    bad = copy.deepcopy(doc)
    fig = bad["sections"]["throughput"]["figures"][1]
    fig["baseline"] = "no.such.figure"
    fig["min"] = 99999
    del bad["commit"]
    bad["sections"]["snapshot"]["skipped"] = ""
    bad["sections"]["bogus"] = {"figures": []}
    assert validate(bad) == ["missing key 'commit' @ $"]
    bad["commit"] = None
    errors = validate(bad)
    assert "need min <= median <= max @ $.sections.throughput.figures[1]" in errors
    assert (
        "baseline 'no.such.figure' is not a figure of this run @ $.sections.throughput.figures[1].baseline"
        in errors
    )
    assert "skipped must be a non-empty reason @ $.sections.snapshot.skipped" in errors
    assert "unknown section 'bogus' @ $.sections.bogus" in errors
    assert validate([]) == ["expected dict, got list @ $"]


def test_wrk_output_is_parsed_with_units() -> None:
    r = parse(WRK_OUTPUT)
    assert r["raw_rps"] == 2399.5
    assert abs(r["rps"] - 2399.5 * 2395 / 2400) < 1e-9  # only successful responses count
    assert r["p50_ms"] == 0.85 and r["p99_ms"] == 1200.0
    assert r["requests"] == 2400 and r["non_2xx"] == 5 and r["socket_errors"] == 3


def test_markdown_table_and_plots(tmp_path: Path) -> None:
    doc = synthetic()
    table = markdown(doc)
    row = "| throughput | ours hello | 2,000 | 1,900-2,100 | req/s | 3 | hello.hypercorn.rps | 0.80 |"
    assert row + " MET: ratio >= 0.8 |" in table
    assert "| snapshot | skipped: runtime_node plugin not built |" in table
    doc["sections"]["throughput"]["notes"].append("line one\nline | two")
    assert "- throughput: line one / line \\| two\n" in markdown(doc)
    written = plots(doc, tmp_path)
    if written:  # matplotlib is an optional (bench) dependency
        assert written == [tmp_path / "throughput.png"]
        assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_delta_follows_children_reaped_in_between() -> None:
    from bench.common import cpu_delta

    # depth 0 daemon, 1 launcher, 2 seed, 3 instances: one instance (5 ms before) was
    # reaped by the seed in between, with 7 ms in all; a new one has used 2 ms so far
    before = {0: (100.0, 0.0), 1: (10.0, 0.0), 2: (50.0, 30.0), 3: (5.0, 0.0)}
    after = {0: (104.0, 0.0), 1: (11.0, 0.0), 2: (53.0, 37.0), 3: (2.0, 0.0)}
    assert cpu_delta(before, after) == {0: 4.0, 1: 1.0, 2: 3.0, 3: 4.0}
    # children that were all reaped (nothing left at their depth) still count
    lean_before, lean_after = {0: (1.0, 0.0), 1: (1.0, 5.0)}, {0: (2.0, 0.0), 1: (2.0, 9.0)}
    assert cpu_delta(lean_before, lean_after) == {0: 1.0, 1: 1.0, 2: 4.0}
