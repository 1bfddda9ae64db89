"""runtime_node start-up: process start to first response, with and without the snapshot.

Standalone (no daemon): NodeRuntime.start over a socketpair, the way the kernel starts
a cold instance, timed from the spawn to the last byte of the first response. Trivial
code and the realistic bundle of ``bench/bundle.py``; runs interleaved so machine
noise hits both modes alike. ``python -m bench.snapshot_bench [--runs N]`` prints JSON;
``measure()`` is what a bench section can call.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from kernel import protocol as p
from kernel.interfaces import FunctionVersion, StartRequest
from kernel.profile import parse_profile
from kernel.sandbox import Sandbox

TRIVIAL = 'addEventListener("fetch", (e) => e.respondWith(new Response("hello")));\n'


class _Kernel:
    launcher = None

    def __init__(self, state: Path) -> None:
        self.state_dir = state

    def log(self, *_a: Any, **_k: Any) -> None:
        pass


async def _first_response(runtime: Any, fv: FunctionVersion, snapshot: bool) -> tuple[float, float]:
    """(spawn to the end of the first response, the worker's own ms from process start to Hello)."""
    ours, theirs = socket.socketpair()
    t0 = time.perf_counter()
    proc = await runtime.start(StartRequest(fv, "bench-1", theirs.fileno(), Sandbox()), snapshot=snapshot)
    theirs.close()
    sock = trio.socket.from_stdlib_socket(ours)
    buf = p.FrameBuffer()
    hello_ms = 0.0
    try:
        with trio.fail_after(30):
            sent = False
            while True:
                data = await sock.recv(1 << 16)
                if not data:
                    raise RuntimeError("the worker exited before answering")
                for f in buf.feed(data):
                    if isinstance(f, p.Hello) and not sent:
                        hello_ms = float((f.info.get("ms") or [0, 0, 0])[-1])
                        await sock.send(p.encode(p.Request(1, "GET", "http://b.localhost/", [], False)))
                        sent = True
                    elif isinstance(f, p.Failure):
                        raise RuntimeError(f"the worker failed: {f.message}")
                    elif isinstance(f, p.End | p.Settled):
                        return (time.perf_counter() - t0) * 1000, hello_ms
    finally:
        proc.kill(9)
        await proc.wait()
        sock.close()


MODES = ("snapshot", "snapshot_warmup", "no_snapshot")
"""Start modes, run interleaved: from the snapshot; from a snapshot whose build sent one
GET / to the handler (``warmup_path = "/"``); without a snapshot."""


async def _measure(codes: dict[str, str], runs: int, warmups: int) -> dict[str, Any]:
    from plugins.runtime_node.config import RuntimeNodeConfig
    from plugins.runtime_node.runtime import NodeRuntime

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="noslate-snapbench-") as tmp:
        runtime = NodeRuntime(_Kernel(Path(tmp)))
        warm = NodeRuntime(_Kernel(Path(tmp)), RuntimeNodeConfig(warmup_path="/"))
        for kind, code in codes.items():
            prof = parse_profile({"name": "b", "runtime": "nodejs"})
            t0 = time.perf_counter()
            artifact = await runtime.prepare(code.encode(), "bench.js", prof)
            build_ms = (time.perf_counter() - t0) * 1000
            await warm.prepare(code.encode(), "bench.js", prof)
            fv = FunctionVersion(prof, "sha256:bench", artifact)
            starts = {
                "snapshot": (runtime, True),
                "snapshot_warmup": (warm, True),
                "no_snapshot": (runtime, False),
            }
            samples: dict[str, list[float]] = {m: [] for m in MODES}
            hellos: dict[str, list[float]] = {m: [] for m in MODES}
            for i in range(runs + warmups):
                for mode in MODES:
                    rt, snap = starts[mode]
                    ms, hello = await _first_response(rt, fv, snap)
                    if i >= warmups:
                        samples[mode].append(ms)
                        hellos[mode].append(hello)
            plain_p50 = statistics.median(samples["no_snapshot"])
            out[kind] = {
                "code_bytes": len(code.encode()),
                "deploy_ms_with_snapshot_build": round(build_ms, 1),
                **{f"{m}_ms": _summary(samples[m]) for m in MODES},
                "speedup_p50": round(plain_p50 / statistics.median(samples["snapshot"]), 2),
                "speedup_p50_with_warmup": round(
                    plain_p50 / statistics.median(samples["snapshot_warmup"]), 2
                ),
                # inside the worker: ms from Node's process start to Hello (median)
                "hello_in_worker_ms": {m: round(statistics.median(hellos[m]), 1) for m in MODES},
            }
    out["node"] = runtime.node_version
    return out


def _summary(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {
        "p50": round(statistics.median(xs), 1),
        "min": round(xs[0], 1),
        "max": round(xs[-1], 1),
        "n": len(xs),
    }


def measure(runs: int = 15, warmups: int = 2, bundle_dir: Path | None = None) -> dict[str, Any]:
    """Trivial code and the realistic bundle; returns medians and the speed-up per kind."""
    codes = {"trivial": TRIVIAL}
    try:
        from bench.bundle import build

        codes["bundle"] = build(bundle_dir or Path(tempfile.gettempdir()) / "noslate-snapbench-bundle")
    except Exception as exc:  # the bundle needs npm packages; report without it
        codes_note = f"bundle unavailable: {exc}"
        return {**trio.run(_measure, codes, runs, warmups), "note": codes_note}
    return trio.run(_measure, codes, runs, warmups)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot_bench")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmups", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.runs, args.warmups), indent=2))
