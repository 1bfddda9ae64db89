"""The ``cgroup`` isolation layer: prepare (daemon), apply (child), attach (launcher), release."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox

log = logging.getLogger("noslate.isolation_cgroup")

PROCS_KEY = "noslate.cgroup.procs"
"""Annotation: newline-separated ``cgroup.procs`` files of the process's cgroup."""
JOIN_KEY = "noslate.cgroup.join"
"""Annotation: ``child`` or ``launcher`` (who writes the pid)."""
V2_DIR_KEY = "noslate.cgroup.v2dir"
"""Annotation (v2 only): the cgroup directory, for clone3(CLONE_INTO_CGROUP)."""

_born_inside = False
"""Set in a child created by :meth:`CgroupLayer.fork_into_cgroup`: nothing to join."""


def join_files(files: list[str], pid: int) -> None:
    """Write ``pid`` (0 = the writer itself) into each ``cgroup.procs`` file."""
    data = str(pid).encode()
    for path in files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def join_mode(configured: str, role: str) -> str:
    """Who writes the pid: an instance forked from a seed cannot join by itself (the
    seed already dropped root and may have pivoted into a root without /sys/fs/cgroup),
    so the launcher moves instances in by host pid; seeds and cold workers follow the
    config."""
    return "launcher" if role == "instance" else configured


class CgroupLayer:
    """Puts every worker process into its own cgroup carrying the profile's limits.

    ``state`` is the plugin's state holder; it has ``manager`` (a CgroupManager once
    the daemon started and cgroups are usable, else None) and ``on_oom`` (called with
    the process info, limit and usage when the kernel OOM-killed a process).
    """

    name = "isolation_cgroup"
    phase = "cgroup"

    def __init__(self, state: Any) -> None:
        self.state = state
        self._born: set[int] = set()

    def prepare(self, sandbox: Sandbox, info: SpawnInfo) -> None:
        """Daemon side, before the spawn: create the cgroup and write its limits."""
        manager = self.state.manager
        if manager is None:
            return
        name = manager.create(info, sandbox.linux.resources)
        sandbox.linux.cgroupsPath = manager.path_of(name)
        sandbox.annotations[PROCS_KEY] = "\n".join(str(p) for p in manager.backend.procs_files(name))
        sandbox.annotations[JOIN_KEY] = join_mode(manager.config.join, info.role)
        if manager.backend.version == "v2":
            sandbox.annotations[V2_DIR_KEY] = str(manager.backend.dirs(name)[0])

    def fork_into_cgroup(self, sandbox: Sandbox) -> int | None:
        """Fork a child born inside its v2 cgroup (0 in the child, pid in the parent).

        Optional launcher fast path: returns None when not possible (v1, no cgroup,
        old kernel), and the launcher then forks normally and the child joins itself.
        """
        global _born_inside
        target = sandbox.annotations.get(V2_DIR_KEY)
        if not target:
            return None
        from plugins.isolation_cgroup.clone import fork_into_cgroup

        try:
            pid = fork_into_cgroup(target)
        except OSError as exc:
            log.debug("clone3 into %s failed (%s); falling back to fork + join", target, exc)
            return None
        if pid == 0:
            _born_inside = True
        else:
            self._born.add(pid)
        return pid

    def apply(self, sandbox: Sandbox) -> None:
        """Inside the new process, before user code: join the cgroup (``join = child``)."""
        files = sandbox.annotations.get(PROCS_KEY)
        if files and not _born_inside and sandbox.annotations.get(JOIN_KEY, "child") == "child":
            join_files(files.split("\n"), 0)

    def attach(self, sandbox: Sandbox, pid: int) -> None:
        """In the launcher after the fork: move ``pid`` in (``join = launcher``)."""
        files = sandbox.annotations.get(PROCS_KEY)
        if pid in self._born:  # created inside by fork_into_cgroup
            self._born.discard(pid)
            return
        if files and sandbox.annotations.get(JOIN_KEY) == "launcher":
            join_files(files.split("\n"), pid)

    def release(self, sandbox: Sandbox, info: SpawnInfo) -> str | None:
        """The process ended: remove its cgroup; ``"oom"`` if the kernel OOM-killed it."""
        manager = self.state.manager
        if manager is None or PROCS_KEY not in sandbox.annotations:
            return None
        try:
            ooms, limits, usage = manager.release(info)
        except Exception:
            log.exception("cgroup release of %s/%s failed", info.function, info.instance)
            return None
        if ooms <= 0:
            return None
        limit = limits.memory_limit if limits else sandbox.linux.resources.memory_limit
        on_oom: Callable[..., None] | None = getattr(self.state, "on_oom", None)
        if on_oom is not None:
            on_oom(info, limit, usage)
        return "oom"

    def usage(self, info: SpawnInfo) -> dict[str, Any]:
        """Current ``memory_bytes``, ``memory_peak_bytes`` and ``cpu_usec`` of a process."""
        manager = self.state.manager
        return {} if manager is None else manager.usage(info)
