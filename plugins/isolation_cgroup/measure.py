"""Measure what joining a cgroup costs on this host: ``python -m plugins.isolation_cgroup.measure``.

Prints medians (min-max) in milliseconds, spawns spread out (``--gap`` apart) and back
to back, for: creating an instance cgroup with limits (``prepare``); a forked child
joining by itself (``join = child``, timed in the child); the parent moving the child
by pid (``join = launcher``); and on a cgroup2 tree, fork + join against
clone3(CLONE_INTO_CGROUP) (timed in the parent); and an instance's whole cgroup cycle
with ``reuse`` off and on (``--cycle-only`` for just that). Needs root or a delegated subtree.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Resources
from plugins.isolation_cgroup.backend import V2Backend
from plugins.isolation_cgroup.clone import fork_into_cgroup
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.layer import join_files
from plugins.isolation_cgroup.manager import CgroupManager
from plugins.isolation_cgroup.mountinfo import detect

RES = Resources(memory_limit=128 << 20, cpu_quota=50_000, pids_limit=64)


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def _series(runs: int, gap: float, one: Callable[[int], float]) -> dict[str, str]:
    out = {}
    for label, pause in (("spread", gap), ("back-to-back", 0.0)):
        xs = []
        for i in range(runs):
            if pause:
                time.sleep(pause)
            xs.append(one(i))
        out[label] = _fmt(xs)
    return out


def _fork_join(files: list[str], mode: str) -> float:
    """Fork; join by the child itself or by the parent; return the join's ms."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        t = time.perf_counter()
        if mode == "child":
            join_files(files, 0)
        os.write(w, f"{(time.perf_counter() - t) * 1000:.4f}".encode())
        os._exit(0)
    os.close(w)
    took = 0.0
    if mode == "launcher":
        t = time.perf_counter()
        join_files(files, pid)
        took = (time.perf_counter() - t) * 1000
    child = float(os.read(r, 64) or 0)
    os.close(r)
    os.waitpid(pid, 0)
    return took if mode == "launcher" else child


def measure_limits_backend(runs: int, gap: float) -> dict[str, Any]:
    """prepare + join on the backend with controllers (v1 here)."""
    manager = CgroupManager(CgroupConfig(root=f"noslate-measure-{os.getpid()}"))
    manager.start()
    out: dict[str, Any] = {
        "backend": manager.backend.version,
        "hierarchies": len(manager.backend.base_dirs()),
    }
    try:

        def prepare(i: int) -> float:
            info = SpawnInfo("m", "v", f"p{i}", "instance")
            t = time.perf_counter()
            manager.create(info, RES)
            took = (time.perf_counter() - t) * 1000
            manager.release(info)
            return took

        out["prepare"] = _series(runs, gap, prepare)
        for mode in ("child", "launcher"):

            def one(i: int, mode: str = mode) -> float:
                info = SpawnInfo("m", "v", f"{mode}{i}", "instance")
                name = manager.create(info, RES)
                took = _fork_join([str(p) for p in manager.backend.procs_files(name)], mode)
                manager.release(info)
                return took

            out[f"join={mode}"] = _series(runs, gap, one)
    finally:
        manager.shutdown()
    return out


def measure_cycle(runs: int, reuse: bool) -> dict[str, Any]:
    """One instance's whole cgroup life as the daemon sees it, ``reuse`` on or off:
    prepare, a forked child joins and exits, release. Times prepare and release (wall)
    and the daemon's kernel CPU per instance (``ru_stime``, includes the fork)."""
    import attrs

    cfg = attrs.evolve(CgroupConfig(root=f"noslate-measure3-{os.getpid()}"), reuse=reuse)
    manager = CgroupManager(cfg)
    manager.start()
    prep: list[float] = []
    rel: list[float] = []
    try:
        sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        for i in range(runs):
            info = SpawnInfo("m", "v", f"i{i}", "instance")
            t = time.perf_counter()
            name = manager.create(info, RES)
            prep.append((time.perf_counter() - t) * 1000)
            _fork_join([str(p) for p in manager.backend.procs_files(name)], "launcher")
            t = time.perf_counter()
            manager.release(info)
            rel.append((time.perf_counter() - t) * 1000)
        sys_ms = (resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0) * 1000 / runs
    finally:
        manager.shutdown()
    return {
        "prepare": _fmt(prep),
        "release": _fmt(rel),
        "prepare+release mean": f"{(sum(prep) + sum(rel)) / runs:.2f}",
        "daemon sys CPU per instance": f"{sys_ms:.2f}",
        "cgroups created": manager.stats["created"],
    }


def measure_v2_clone(runs: int, gap: float) -> dict[str, Any]:
    """fork + cgroup.procs write against clone3(CLONE_INTO_CGROUP) on the cgroup2 tree."""
    layout = detect()
    if layout.v2 is None:
        return {"skipped": "no cgroup2 tree"}
    h = layout.v2
    manager = CgroupManager(
        CgroupConfig(root=f"noslate-measure2-{os.getpid()}", version="v2"),
        layout,
        backend=V2Backend(h.path_of(h.own), ()),
    )
    manager.start()
    name = manager.create(SpawnInfo("m", "v", "c", "instance"), Resources())
    target = str(manager.backend.dirs(name)[0])
    out: dict[str, Any] = {}
    try:

        def fork_then_join(i: int) -> float:
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            join_files([f"{target}/cgroup.procs"], pid)
            took = (time.perf_counter() - t) * 1000
            os.waitpid(pid, 0)
            return took

        def clone_into(i: int) -> float:
            t = time.perf_counter()
            pid = fork_into_cgroup(target)
            if pid == 0:
                os._exit(0)
            took = (time.perf_counter() - t) * 1000
            os.waitpid(pid, 0)
            return took

        out["fork+join"] = _series(runs, gap, fork_then_join)
        out["clone3 into cgroup"] = _series(runs, gap, clone_into)
    finally:
        manager.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between spread-out spawns")
    ap.add_argument("--cycle-only", action="store_true", help="only the reuse on/off instance cycle")
    args = ap.parse_args()
    cycle = {f"reuse={on}": measure_cycle(args.runs * 5, on) for on in (False, True)}
    if args.cycle_only:
        print(json.dumps({"instance cycle (prepare, join, exit, release)": cycle}, indent=2))
        return
    result = {
        "instance cycle (prepare, join, exit, release)": cycle,
        "limits backend": measure_limits_backend(args.runs, args.gap),
        "v2 (no controllers)": measure_v2_clone(args.runs, args.gap),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
