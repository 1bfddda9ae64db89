"""cgroup v1 and v2 backends: create, limit, join, inspect, kill and remove cgroups.

Cgroups are named by a path relative to the backend's *base* (the parent cgroup the
daemon was given), e.g. ``noslate/daemon-812-4410/hello/hello-1``. On v1 every name
exists once per hierarchy (memory, cpu, cpuacct, pids); on v2 once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from kernel.sandbox import Resources
from plugins.isolation_cgroup.fs import CgroupError, CgroupFS

NO_LIMIT_V1 = "-1"
FORCE_EMPTY_ABOVE = 4 << 20
"""v1: leftover charge (bytes) of a parked cgroup worth reclaiming with memory.force_empty."""


def _kv(text: str) -> dict[str, int]:
    """Parse ``key value`` lines (memory.events, memory.oom_control, cpu.stat)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


class Backend:
    """What the manager needs from a cgroup version."""

    version = ""
    controllers: tuple[str, ...] = ()

    def __init__(self, bases: dict[str, Path], fs: CgroupFS | None = None) -> None:
        self.bases = bases
        """Base directory per controller (v2: one entry per controller, same path)."""
        self.fs = fs or CgroupFS()
        self.controllers = tuple(bases)
        self._known: set[str] = set()
        """Names created (and enabled) already, so a new instance costs one mkdir."""

    # -- paths -------------------------------------------------------------------------
    def base_dirs(self) -> list[Path]:
        """Distinct base directories (co-mounted v1 controllers share one)."""
        return list(dict.fromkeys(self.bases.values()))

    def dirs(self, name: str) -> list[Path]:
        """Every directory of cgroup ``name``."""
        return [b / name for b in self.base_dirs()]

    def procs_files(self, name: str) -> list[Path]:
        """The ``cgroup.procs`` files a process writes itself (or is written) into."""
        return [d / "cgroup.procs" for d in self.dirs(name)]

    def dir_for(self, controller: str, name: str) -> Path:
        return self.bases[controller] / name

    # -- life cycle --------------------------------------------------------------------
    def ensure(self, name: str, *, parent: bool = False) -> None:
        """Create cgroup ``name`` (and missing ancestors) with no limits of its own."""
        parts = Path(name).parts
        for i in range(1, len(parts) + 1):
            prefix = str(Path(*parts[:i]))
            inner = i < len(parts) or parent
            if inner and prefix in self._known:
                continue
            for d in self.dirs(prefix):
                self.fs.mkdir(d)
            if inner:
                self._enable_children(prefix)
                self._known.add(prefix)

    def _enable_children(self, name: str) -> None:
        """v2: let children of ``name`` use the controllers (cgroup.subtree_control)."""

    def create(self, name: str, res: Resources) -> None:
        """Create leaf cgroup ``name`` and write ``res`` into it."""
        self.ensure(name)
        self.set_limits(name, res)

    def set_limits(self, name: str, res: Resources) -> None:
        raise NotImplementedError

    def join(self, name: str, pid: int) -> None:
        """Move process ``pid`` (0: the caller) into cgroup ``name``."""
        for f in self.procs_files(name):
            self.fs.write(f, str(pid))

    def procs(self, name: str) -> set[int]:
        """Pids in cgroup ``name`` and below, over all hierarchies."""
        out: set[int] = set()
        for d in self.dirs(name):
            out |= self._procs_under(d)
        return out

    def _procs_under(self, d: Path) -> set[int]:
        out: set[int] = set()
        try:
            text = self.fs.read(d / "cgroup.procs")
        except CgroupError:
            return out
        out |= {int(p) for p in text.split() if p.isdigit()}
        for child in self.fs.subdirs(d):
            out |= self._procs_under(d / child)
        return out

    def kill_all(self, name: str, timeout: float = 2.0) -> None:
        """SIGKILL every process in ``name`` and below; wait until they are gone."""
        if self.empty(name):
            return
        deadline = time.monotonic() + timeout
        while pids := self.procs(name):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise CgroupError(f"processes {sorted(pids)} in cgroup {name} survive SIGKILL")
            time.sleep(0.005)

    def empty(self, name: str) -> bool:
        """One cheap read saying no task is in ``name`` or below (False: unknown or busy)."""
        return False

    def remove(self, name: str, *, retries: int = 3) -> bool:
        """Remove cgroup ``name`` and its descendants (bottom-up); False if busy."""
        self._known = {k for k in self._known if k != name and not k.startswith(name + "/")}
        ok = True
        for d in self.dirs(name):
            ok = self._remove_tree(d, retries) and ok
        return ok

    def _remove_tree(self, d: Path, retries: int) -> bool:
        for child in self.fs.subdirs(d):
            if not self._remove_tree(d / child, retries):
                return False
        for attempt in range(retries + 1):
            if self.fs.rmdir(d):
                return True
            if attempt < retries:
                time.sleep(0.002 * (attempt + 1))
        return False

    def children(self, name: str) -> list[str]:
        """Names of child cgroups of ``name`` (union over hierarchies)."""
        out: set[str] = set()
        for d in self.dirs(name):
            out.update(self.fs.subdirs(d))
        return sorted(out)

    def exists(self, name: str) -> bool:
        return any(self.fs.exists(d) for d in self.dirs(name))

    # -- inspection --------------------------------------------------------------------
    def oom_kills(self, name: str) -> int:
        """How many processes the kernel OOM-killed in ``name`` (and below)."""
        raise NotImplementedError

    def usage(self, name: str) -> dict[str, Any]:
        """``memory_bytes``, ``memory_peak_bytes``, ``cpu_usec`` (what is cheap to read)."""
        raise NotImplementedError

    def limits(self, name: str) -> Resources:
        """The limits the kernel holds for ``name`` (read back)."""
        raise NotImplementedError

    def reset(self, name: str) -> None:
        """Prepare an empty cgroup for its next process: drop leftover memory charges and
        the peak (where the kernel allows it). Counters that cannot be reset (OOM kills,
        CPU time) are taken as a baseline by the manager instead."""

    def _read_int(self, path: Path) -> int | None:
        try:
            text = self.fs.read(path).strip()
        except CgroupError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None


class V1Backend(Backend):
    """Legacy hierarchies: one mount per controller (or co-mounted cpu,cpuacct)."""

    version = "v1"

    def set_limits(self, name: str, res: Resources) -> None:
        fs = self.fs
        if "memory" in self.bases and res.memory_limit is not None:
            mem = self.dir_for("memory", name)
            fs.write(mem / "memory.limit_in_bytes", str(res.memory_limit))
            if fs.exists(mem / "memory.memsw.limit_in_bytes"):
                # memory+swap = memory: the limit cannot be dodged by swapping out.
                fs.write(mem / "memory.memsw.limit_in_bytes", str(res.memory_limit))
        if "cpu" in self.bases:
            cpu = self.dir_for("cpu", name)
            fs.write(cpu / "cpu.cfs_period_us", str(res.cpu_period))
            quota = NO_LIMIT_V1 if res.cpu_quota is None else str(res.cpu_quota)
            fs.write(cpu / "cpu.cfs_quota_us", quota)
        if "pids" in self.bases and res.pids_limit is not None:
            fs.write(self.dir_for("pids", name) / "pids.max", str(res.pids_limit))

    def oom_kills(self, name: str) -> int:
        if "memory" not in self.bases:
            return 0
        try:
            text = self.fs.read(self.dir_for("memory", name) / "memory.oom_control")
        except CgroupError:
            return 0
        return _kv(text).get("oom_kill", 0)

    def usage(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "memory" in self.bases:
            mem = self.dir_for("memory", name)
            out["memory_bytes"] = self._read_int(mem / "memory.usage_in_bytes")
            out["memory_peak_bytes"] = self._read_int(mem / "memory.max_usage_in_bytes")
        if "cpuacct" in self.bases:
            ns = self._read_int(self.dir_for("cpuacct", name) / "cpuacct.usage")
            out["cpu_usec"] = None if ns is None else ns // 1000
        return out

    def limits(self, name: str) -> Resources:
        res = Resources()
        if "memory" in self.bases:
            res.memory_limit = self._read_int(self.dir_for("memory", name) / "memory.limit_in_bytes")
        if "cpu" in self.bases:
            cpu = self.dir_for("cpu", name)
            quota = self._read_int(cpu / "cpu.cfs_quota_us")
            res.cpu_quota = None if quota is None or quota < 0 else quota
            res.cpu_period = self._read_int(cpu / "cpu.cfs_period_us") or res.cpu_period
        if "pids" in self.bases:
            text = self.fs.read(self.dir_for("pids", name) / "pids.max").strip()
            res.pids_limit = None if text == "max" else int(text)
        return res

    def empty(self, name: str) -> bool:
        # pids.current counts every task in the cgroup and below. A task cannot be in
        # the pids cgroup of a slot and not in its other hierarchies (joins write all
        # of them; a failed join ends the process), short of root moving it by hand.
        if "pids" not in self.bases:
            return False
        return self._read_int(self.dir_for("pids", name) / "pids.current") == 0

    def reset(self, name: str) -> None:
        if "memory" not in self.bases:
            return
        mem = self.dir_for("memory", name)
        if (self._read_int(mem / "memory.usage_in_bytes") or 0) > FORCE_EMPTY_ABOVE:
            # Page cache charged by the last process: reclaim it so it does not count
            # against the next one (the cgroup is empty, so this cannot fail with EBUSY).
            # Not for the few hundred KiB of slab an exited process leaves: force_empty
            # drains every CPU's LRU cache, which costs more than the rest of a release.
            with contextlib.suppress(CgroupError):
                self.fs.write(mem / "memory.force_empty", "0")
        self.fs.write(mem / "memory.max_usage_in_bytes", "0")
        if self.fs.exists(mem / "memory.memsw.max_usage_in_bytes"):
            self.fs.write(mem / "memory.memsw.max_usage_in_bytes", "0")


class V2Backend(Backend):
    """The unified hierarchy (one tree; controllers enabled level by level)."""

    version = "v2"

    def __init__(self, base: Path, controllers: tuple[str, ...], fs: CgroupFS | None = None) -> None:
        super().__init__({c: base for c in controllers} or {"": base}, fs)
        self.base = base
        self.controllers = tuple(c for c in controllers if c)

    def base_dirs(self) -> list[Path]:
        return [self.base]

    def dir_for(self, controller: str, name: str) -> Path:
        return self.base / name

    def _enable_children(self, name: str) -> None:
        if not self.controllers:
            return
        d = self.base / name
        current = set(self.fs.read(d / "cgroup.subtree_control").split())
        missing = [c for c in self.controllers if c not in current]
        if missing:
            self.fs.write(d / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))

    def enable_at_base(self) -> None:
        """Enable the controllers for children of the base (its own subtree_control)."""
        if not self.controllers:
            return
        current = set(self.fs.read(self.base / "cgroup.subtree_control").split())
        missing = [c for c in self.controllers if c not in current]
        if missing:
            self.fs.write(self.base / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))

    def set_limits(self, name: str, res: Resources) -> None:
        d, fs, ctrl = self.base / name, self.fs, self.controllers
        if "memory" in ctrl and res.memory_limit is not None:
            fs.write(d / "memory.max", str(res.memory_limit))
            if fs.exists(d / "memory.swap.max"):
                fs.write(d / "memory.swap.max", "0")
            fs.write(d / "memory.oom.group", "1")
        if "cpu" in ctrl:
            quota = "max" if res.cpu_quota is None else str(res.cpu_quota)
            fs.write(d / "cpu.max", f"{quota} {res.cpu_period}")
        if "pids" in ctrl and res.pids_limit is not None:
            fs.write(d / "pids.max", str(res.pids_limit))

    def empty(self, name: str) -> bool:
        try:
            events = _kv(self.fs.read(self.base / name / "cgroup.events"))
        except CgroupError:
            return False
        return events.get("populated") == 0

    def kill_all(self, name: str, timeout: float = 2.0) -> None:
        kill = self.base / name / "cgroup.kill"
        if self.fs.exists(kill) and self.procs(name):
            self.fs.write(kill, "1")
        super().kill_all(name, timeout)

    def oom_kills(self, name: str) -> int:
        try:
            text = self.fs.read(self.base / name / "memory.events")
        except CgroupError:
            return 0
        return _kv(text).get("oom_kill", 0)

    def usage(self, name: str) -> dict[str, Any]:
        d = self.base / name
        out: dict[str, Any] = {
            "memory_bytes": self._read_int(d / "memory.current"),
            "memory_peak_bytes": self._read_int(d / "memory.peak"),
        }
        try:
            out["cpu_usec"] = _kv(self.fs.read(d / "cpu.stat")).get("usage_usec")
        except CgroupError:
            out["cpu_usec"] = None
        return out

    def limits(self, name: str) -> Resources:
        d, res = self.base / name, Resources()
        if "memory" in self.controllers:
            text = self.fs.read(d / "memory.max").strip()
            res.memory_limit = None if text == "max" else int(text)
        if "cpu" in self.controllers:
            quota, period = self.fs.read(d / "cpu.max").split()
            res.cpu_quota = None if quota == "max" else int(quota)
            res.cpu_period = int(period)
        if "pids" in self.controllers:
            text = self.fs.read(d / "pids.max").strip()
            res.pids_limit = None if text == "max" else int(text)
        return res
