"""The daemon's cgroup tree: layout, start-up checks, per-process cgroups, clean-up.

Layout (relative to the parent cgroup; one tree per v1 hierarchy)::

    <root>/daemon-<pid>-<starttime>/<function>/<instance>

``daemon-<pid>-<starttime>`` names the owning daemon, so a later daemon can tell a
stale tree (owner gone) from a live one (another daemon sharing the root).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Resources
from plugins.isolation_cgroup.backend import Backend, V1Backend, V2Backend
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.fs import CgroupError, CgroupFS
from plugins.isolation_cgroup.mountinfo import WANTED_V1, WANTED_V2, CgroupLayout, detect
from plugins.isolation_cgroup.pool import IdlePool, Slot, limits_key

log = logging.getLogger("noslate.isolation_cgroup")
DAEMON_RE = re.compile(r"^daemon-(\d+)-(\d+)$")
SAFE_RE = re.compile(r"[^A-Za-z0-9_.@-]")


def proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None if no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def owner_alive(name: str) -> bool:
    """True when ``daemon-<pid>-<start>`` names a process that still runs."""
    m = DAEMON_RE.match(name)
    if not m:
        return True  # not ours to judge
    return proc_starttime(int(m.group(1))) == int(m.group(2))


class Unusable(Exception):
    """cgroups cannot be used here; the message says why and what to do."""


def choose_backend(config: CgroupConfig, layout: CgroupLayout, fs: CgroupFS | None = None) -> Backend:
    """Pick v2 or v1 per ``config.version`` and the host layout; raise Unusable."""
    want = config.version
    v2_full = layout.v2 is not None and all(c in layout.v2.controllers for c in WANTED_V2)
    if want == "v2" or (want == "auto" and v2_full):
        h = layout.v2
        if h is None:
            raise Unusable("cgroup v2 was asked for (version = 'v2') but no cgroup2 file system is mounted")
        ctrls = tuple(c for c in WANTED_V2 if c in h.controllers)
        if "memory" not in ctrls:
            raise Unusable(
                f"the cgroup v2 tree at {h.mount} has no memory controller "
                f"(cgroup.controllers: {' '.join(h.controllers) or 'empty'}); "
                "use version = 'v1' on a hybrid host, or enable the controller"
            )
        base = h.path_of(config.parent or h.own)
        return V2Backend(base, ctrls, fs)
    if not layout.v1 or "memory" not in layout.v1:
        raise Unusable(
            f"no usable cgroup hierarchy with a memory controller was found (layout: {layout.mode}); "
            "mount cgroup v2 with the memory, cpu and pids controllers enabled"
        )
    bases = {c: h.path_of(config.parent or h.own) for c, h in layout.v1.items() if c in WANTED_V1}
    return V1Backend(bases, fs)


class CgroupManager:
    """Creates and removes the cgroups of one daemon."""

    def __init__(
        self,
        config: CgroupConfig,
        layout: CgroupLayout | None = None,
        fs: CgroupFS | None = None,
        pid: int | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.config = config
        self.layout = layout if layout is not None else detect()
        self.backend = backend or choose_backend(config, self.layout, fs)
        self.pid = pid or os.getpid()
        start = proc_starttime(self.pid) or 0
        self.daemon = f"{config.root}/daemon-{self.pid}-{start}"
        self.stale_removed: list[str] = []
        self.pending: set[str] = set()
        """Cgroups that were still busy when released; retried later."""
        self.started = False
        self.assigned: dict[str, Slot] = {}
        """Process key (``name_for`` without a slot) -> the cgroup it was given."""
        self.idle = IdlePool()
        self.lock = threading.RLock()
        """prepare/release run in the launcher client's thread lane, trim() in another."""
        self._seq = itertools.count(1)
        self._names: set[str] = set()
        """Names of this daemon's slot cgroups (in use or parked)."""
        self.stats = {"created": 0, "reused": 0, "removed": 0}

    # -- start and stop ----------------------------------------------------------------
    def start(self) -> None:
        """Check we can create cgroups, clean stale trees, create ours; raise Unusable."""
        try:
            if isinstance(self.backend, V2Backend):
                self._v2_prepare_base()
            self.backend.ensure(self.config.root, parent=True)
            if self.config.clean_stale:
                self.clean_stale()
            self.backend.ensure(self.daemon, parent=True)
        except CgroupError as exc:
            raise Unusable(str(exc)) from exc
        self.started = True

    def _v2_prepare_base(self) -> None:
        """Enable controllers for children of the base cgroup.

        v2 forbids processes in a cgroup whose controllers are enabled for children
        (except at the root): under systemd ``Delegate=yes`` the daemon sits in its own
        service cgroup, so its processes move to a ``supervisor`` leaf first.
        """
        b = self.backend
        assert isinstance(b, V2Backend)
        try:
            b.enable_at_base()
        except CgroupError:
            pids = b.fs.read(b.base / "cgroup.procs").split()
            if not pids:
                raise
            b.fs.mkdir(b.base / "supervisor")
            for pid in pids:
                try:
                    b.fs.write(b.base / "supervisor" / "cgroup.procs", pid)
                except CgroupError as exc:  # exited meanwhile
                    log.debug("could not move %s: %s", pid, exc)
            b.enable_at_base()

    def clean_stale(self) -> list[str]:
        """Kill and remove ``daemon-*`` trees under our root whose owner is gone."""
        removed = []
        for child in self.backend.children(self.config.root):
            name = f"{self.config.root}/{child}"
            if name == self.daemon or not DAEMON_RE.match(child) or owner_alive(child):
                continue
            self.backend.kill_all(name)
            if self.backend.remove(name, retries=20):
                removed.append(name)
                log.warning("removed stale cgroup tree %s (its daemon is gone)", name)
        self.stale_removed += removed
        return removed

    def shutdown(self) -> None:
        """Kill whatever is left in our tree and remove it; remove the root if empty."""
        if not self.started:
            return
        self.started = False
        with self.lock:
            self.assigned.clear()
            self.idle.clear()
            self._names.clear()
        try:
            self.backend.kill_all(self.daemon)
        except CgroupError as exc:
            log.error("cgroup shutdown: %s", exc)
        if not self.backend.remove(self.daemon, retries=20):
            log.error("cgroup shutdown: %s is still busy and was left behind", self.daemon)
        # Only the shared root itself, and only when no other daemon has a tree in it:
        # remove() is recursive and would delete other daemons' (momentarily empty) trees.
        if not self.backend.children(self.config.root):
            self.backend.remove(self.config.root, retries=0)

    # -- per process -------------------------------------------------------------------
    def key_for(self, info: SpawnInfo) -> str:
        """The name identifying one worker process (its cgroup's name without reuse)."""
        fn = SAFE_RE.sub("_", info.function) or "_"
        inst = SAFE_RE.sub("_", info.instance or f"{info.role}-{info.version}") or "_"
        return f"{self.daemon}/{fn}/{inst}"

    def name_for(self, info: SpawnInfo) -> str:
        """The cgroup name of one worker process (its slot while it has one)."""
        key = self.key_for(info)
        slot = self.assigned.get(key)
        return slot.name if slot is not None else key

    def create(self, info: SpawnInfo, res: Resources) -> str:
        """Give a new process a cgroup with limits ``res``: a parked one of its function
        when there is one (``reuse``), else a new one; return its name."""
        key = self.key_for(info)
        with self.lock:
            if (old := self.assigned.pop(key, None)) is not None:  # a reused id: start clean
                self._drop(old, kill=True)
            if not self.config.reuse:
                if self.backend.exists(key):
                    self.backend.kill_all(key)
                    self.backend.remove(key)
                self.backend.create(key, res)
                self.assigned[key] = Slot(key, res)
                self.stats["created"] += 1
                return key
            fn_dir = key.rpartition("/")[0]
            slot, same = self.idle.take(fn_dir, limits_key(res))
            if slot is not None and not same:
                try:
                    self.backend.set_limits(slot.name, res)
                    slot.limits = res
                except CgroupError as exc:
                    log.debug("parked cgroup %s not reusable (%s); removing it", slot.name, exc)
                    self._drop(slot, kill=False)
                    slot = None
            if slot is None:
                # Named after its first process unless a slot of that name exists.
                name = (
                    key
                    if key not in self._names and key not in self.pending
                    else f"{fn_dir}/slot-{next(self._seq)}"
                )
                slot = Slot(name, res)
                self._names.add(name)
                self.backend.create(slot.name, res)
                self.stats["created"] += 1
            else:
                self.stats["reused"] += 1
            self.assigned[key] = slot
            return slot.name

    def release(self, info: SpawnInfo) -> tuple[int, Resources | None, dict[str, Any]]:
        """The process ended: return (OOM kills, its limits, last usage).

        Anything left in its cgroup is killed first, so kills counted afterwards belong
        to this process. An empty cgroup without new OOM kills is parked for reuse;
        otherwise (OOM, not empty, ``reuse = false``) it is removed.
        """
        key = self.key_for(info)
        with self.lock:
            slot = self.assigned.pop(key, None)
            if slot is None or not self.backend.exists(slot.name):
                return 0, None, {}
            name = slot.name
            emptied = True
            try:
                self.backend.kill_all(name)  # anything it forked dies with it
            except CgroupError as exc:
                log.error("cgroup release: %s", exc)
                emptied = False
            total = self.backend.oom_kills(name)
            ooms = total - slot.oom_base
            usage = self._usage(slot)
            # deploy-time jobs (role "build") are not parked: their cgroups are sized
            # for esbuild or a snapshot build, not for the function's instances
            build = info.role == "build"
            if build or ooms > 0 or not emptied or not self.config.reuse or self.config.pool_max_idle == 0:
                self._drop(slot, kill=False)
            else:
                self._park(slot, total, usage)
            self._retry_pending()
            self._trim_locked(time.monotonic())
            return ooms, slot.limits, usage

    def _park(self, slot: Slot, oom_total: int, usage: dict[str, Any]) -> None:
        try:
            self.backend.reset(slot.name)
            slot.cpu_base += usage.get("cpu_usec") or 0  # the exited process's share
        except CgroupError as exc:
            log.debug("cgroup %s could not be reset (%s); removing it", slot.name, exc)
            self._drop(slot, kill=False)
            return
        slot.oom_base = oom_total
        slot.idle_since = time.monotonic()
        self.idle.put(slot)
        for extra in self.idle.surplus(slot.function_dir, self.config.pool_max_idle):
            self._drop(extra, kill=False)

    def _drop(self, slot: Slot, *, kill: bool) -> None:
        """Remove one slot's cgroup (retried later if still busy)."""
        if kill:
            try:
                self.backend.kill_all(slot.name)
            except CgroupError as exc:
                log.error("cgroup release: %s", exc)
        if not self.backend.remove(slot.name):
            self.pending.add(slot.name)
        self._names.discard(slot.name)
        self.stats["removed"] += 1
        self.idle.by_function.setdefault(slot.function_dir, [])  # trim may remove its function

    def _retry_pending(self) -> None:
        for name in list(self.pending):
            if self.backend.remove(name, retries=0):
                self.pending.discard(name)

    def trim(self, now: float | None = None) -> int:
        """Remove parked cgroups idle for ``pool_idle_seconds``, and function cgroups
        left without any; return how many were removed. Run periodically."""
        with self.lock:
            if not self.started:
                return 0
            return self._trim_locked(time.monotonic() if now is None else now)

    def _trim_locked(self, now: float) -> int:
        old = self.idle.expired(now, self.config.pool_idle_seconds)
        for slot in old:
            self._drop(slot, kill=False)
        busy = {s.function_dir for s in self.assigned.values()}
        for fn_dir in self.idle.functions():
            if self.idle.count(fn_dir) == 0 and fn_dir not in busy:
                self.idle.forget(fn_dir)
                if not self.backend.children(fn_dir):
                    self.backend.remove(fn_dir, retries=0)
        if old:
            self._retry_pending()
        return len(old)

    def _usage(self, slot: Slot) -> dict[str, Any]:
        out = self.backend.usage(slot.name)
        if slot.cpu_base and out.get("cpu_usec") is not None:
            out["cpu_usec"] = max(0, out["cpu_usec"] - slot.cpu_base)
        return out

    def usage(self, info: SpawnInfo) -> dict[str, Any]:
        """Current memory and CPU usage of a worker process's cgroup."""
        slot = self.assigned.get(self.key_for(info))
        return self._usage(slot) if slot is not None else self.backend.usage(self.key_for(info))

    # -- reporting ---------------------------------------------------------------------
    def path_of(self, name: str) -> str:
        """The cgroup path (as /proc/<pid>/cgroup shows it) in the memory hierarchy."""
        h = self.layout.v2 if isinstance(self.backend, V2Backend) else self.layout.v1.get("memory")
        base = self.config.parent or (h.own if h else "/")
        return str(Path(base) / name)

    def report(self) -> dict[str, Any]:
        """The capability report (JSON-able)."""
        base = self.backend.base_dirs()[0]
        try:
            st = os.stat(base)
            delegated = os.geteuid() != 0 and st.st_uid == os.geteuid()
        except OSError:
            delegated = False
        return {
            "enabled": True,
            "usable": self.started,
            "host": self.layout.mode,
            "backend": self.backend.version,
            "controllers": list(dict.fromkeys(c for c in self.backend.controllers if c)),
            "v2_controllers": list(self.layout.v2_controllers()),
            "delegated": delegated,
            "root_user": os.geteuid() == 0,
            "tree": [str(d / self.daemon) for d in self.backend.base_dirs()],
            "join": self.config.join,
            "stale_removed": list(self.stale_removed),
            "reuse": self.config.reuse,
            "pool": {"idle": self.idle.total(), "in_use": len(self.assigned), **self.stats},
        }
