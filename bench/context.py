"""Run-wide state shared by the sections: mode parameters, scratch dir, cached daemons."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from attrs import define, field

from bench.ours import Daemon


@define(frozen=True)
class Params:
    """How much each section measures (``--quick`` vs ``--full``)."""

    cold_runs: int
    warm_runs: int
    wrk_duration: float
    wrk_repeats: int
    disposable_duration: float
    memory_instances: int
    isolation_runs: int
    isolation_cold_runs: int
    limit_runs: int
    kv_ops: int
    kv_repeats: int
    warmups: int


QUICK = Params(
    cold_runs=5,
    warm_runs=10,
    wrk_duration=1.0,
    wrk_repeats=2,
    disposable_duration=1.0,
    memory_instances=20,
    isolation_runs=6,
    isolation_cold_runs=0,
    limit_runs=2,
    kv_ops=300,
    kv_repeats=2,
    warmups=1,
)
FULL = Params(
    cold_runs=30,
    warm_runs=40,
    wrk_duration=3.0,
    wrk_repeats=3,
    disposable_duration=3.0,
    memory_instances=100,
    isolation_runs=20,
    isolation_cold_runs=6,
    limit_runs=6,
    kv_ops=2000,
    kv_repeats=3,
    warmups=2,
)


@define
class Context:
    mode: str
    params: Params
    tmp: Path = field(factory=lambda: Path(tempfile.mkdtemp(prefix=f"noslate-bench-{os.getpid()}-")))
    init_iterations: int = 0
    init_ms_node: float = 0.0
    daemons: dict[tuple[str, ...], Daemon] = field(factory=dict)
    cache: dict[str, Any] = field(factory=dict)

    def workdir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def daemon(self, plugins: list[str], config: dict[str, Any] | None = None, key: str = "") -> Daemon:
        """A started daemon with exactly ``plugins`` (cached per plugin set and ``key``)."""
        ident = (*plugins, key)
        d = self.daemons.get(ident)
        if d is not None and d.proc is not None and d.proc.poll() is None:
            return d
        d = Daemon(
            self.workdir("daemon-" + "-".join(p[:6] for p in plugins[6:]) + key + str(len(self.daemons))),
            plugins,
            config,
        )
        self.daemons[ident] = d
        return d.start()

    def stop_daemon(self, plugins: list[str], key: str = "") -> None:
        d = self.daemons.pop((*plugins, key), None)
        if d is not None:
            d.stop()

    def close(self, keep_tmp: bool = False) -> None:
        for d in self.daemons.values():
            with contextlib.suppress(Exception):
                d.stop()
        self.daemons.clear()
        if not keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
