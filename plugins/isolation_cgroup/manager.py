"""The daemon's cgroup tree: layout, start-up checks, per-process cgroups, clean-up.

Layout (relative to the parent cgroup; one tree per v1 hierarchy)::

    <root>/daemon-<pid>-<starttime>/<function>/<instance>

``daemon-<pid>-<starttime>`` names the owning daemon, so a later daemon can tell a
stale tree (owner gone) from a live one (another daemon sharing the root).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Resources
from plugins.isolation_cgroup.backend import Backend, V1Backend, V2Backend
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.fs import CgroupError, CgroupFS
from plugins.isolation_cgroup.mountinfo import WANTED_V1, WANTED_V2, CgroupLayout, detect

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
    def name_for(self, info: SpawnInfo) -> str:
        """The cgroup name of one worker process."""
        fn = SAFE_RE.sub("_", info.function) or "_"
        inst = SAFE_RE.sub("_", info.instance or f"{info.role}-{info.version}") or "_"
        return f"{self.daemon}/{fn}/{inst}"

    def create(self, info: SpawnInfo, res: Resources) -> str:
        """Create the cgroup of a new process with limits ``res``; return its name."""
        name = self.name_for(info)
        if self.backend.exists(name):  # a reused instance id: start clean
            self.backend.kill_all(name)
            self.backend.remove(name)
        self.backend.create(name, res)
        return name

    def release(self, info: SpawnInfo) -> tuple[int, Resources | None, dict[str, Any]]:
        """The process ended: return (OOM kills, its limits, last usage); remove its cgroup."""
        name = self.name_for(info)
        if not self.backend.exists(name):
            return 0, None, {}
        ooms = self.backend.oom_kills(name)
        try:
            limits = self.backend.limits(name)
        except (CgroupError, ValueError):
            limits = None
        usage = self.backend.usage(name)
        self.backend.kill_all(name)  # anything it forked dies with it
        if not self.backend.remove(name):
            self.pending.add(name)
        self._retry_pending()
        fn_dir = name.rpartition("/")[0]
        if not self.backend.children(fn_dir):
            self.backend.remove(fn_dir, retries=0)
        return ooms, limits, usage

    def _retry_pending(self) -> None:
        for name in list(self.pending):
            if self.backend.remove(name, retries=0):
                self.pending.discard(name)

    def usage(self, info: SpawnInfo) -> dict[str, Any]:
        """Current memory and CPU usage of a worker process's cgroup."""
        return self.backend.usage(self.name_for(info))

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
        }
