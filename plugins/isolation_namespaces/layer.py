"""The ``namespaces`` isolation layer: unshare, enter a new pid namespace, pivot_root.

A new pid namespace only applies to the caller's *children*, so after ``unshare`` the
process forks once: the child becomes pid 1 (init) of the namespace and carries on as
the worker (a seed then forks its instances inside the namespace and reaps them); the
parent stays outside as a tiny stand-in that forwards signals and exits with the
child's status, so the launcher keeps seeing one process per worker. If the stand-in
dies, the child gets SIGKILL (parent-death signal) and the kernel kills the whole
namespace with it.
"""

from __future__ import annotations

import os
import select
import signal
import socket

from kernel import oslib
from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox
from plugins.isolation_namespaces import linux as L
from plugins.isolation_namespaces.rootfs import build_and_pivot
from plugins.isolation_namespaces.spec import ANN_LOOPBACK

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_state = {"done": False}
STAND_IN_NAME = "noslate-nsinit"


def _drop_privileges(uid: int, gid: int, last_cap: int) -> None:
    """The stand-in keeps no privilege: empty bounding set, the worker's uid/gid (so it
    may still signal its child), no capabilities, no_new_privs."""
    if os.geteuid() != 0 or uid == 0:
        return
    for cap in range(last_cap + 1):
        oslib.capbset_drop(cap)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root to non-root: permitted/effective sets emptied
    L.set_no_new_privs()


def _stand_in(child: int, keep_fd: int, uid: int, gid: int, last_cap: int) -> None:
    """Run as the child's host-side parent until it exits; never returns.

    It touches no file: it shares the child's mount namespace, so the child's
    pivot_root changes its root too (and its /proc then belongs to the inner pid
    namespace, where it has no /proc/self)."""
    try:
        os.closerange(3, keep_fd)
        os.closerange(keep_fd + 1, 1 << 16)
        L.set_name(STAND_IN_NAME)
        _drop_privileges(uid, gid, last_cap)
        L.set_pdeathsig(signal.SIGKILL)  # after setuid, which clears it
        for sig in FORWARDED:
            signal.signal(sig, lambda s, _f: os.kill(child, s))
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except ChildProcessError:
                os._exit(1)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)
        os._exit(os.waitstatus_to_exitcode(status))
    except BaseException:
        os._exit(1)


def enter_pid_namespace(uid: int = 0, gid: int = 0) -> None:
    """Fork after ``unshare(CLONE_NEWPID)``; return in the child (pid 1). The stand-in
    left outside drops to ``uid``/``gid`` (the worker's) when those are not root."""
    last_cap = oslib.cap_last_cap()
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(r)
        _stand_in(pid, w, uid, gid, last_cap)
    os.close(w)
    L.set_pdeathsig(signal.SIGKILL)
    gone = select.select([r], [], [], 0)[0]  # EOF already: the stand-in died before prctl
    os.close(r)
    if gone:
        os._exit(1)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def translate_pid(parent: int, pid: int) -> int:
    """Host pid of the child of (the seed behind stand-in) ``parent`` whose inner pid is ``pid``."""
    try:
        with open(f"/proc/{parent}/comm") as f:
            if f.read().strip() != STAND_IN_NAME:
                return pid
    except OSError:
        return pid
    for seed in _children(parent):
        for kid in _children(seed):
            try:
                with open(f"/proc/{kid}/status") as f:
                    nspid = next((ln.split()[1:] for ln in f if ln.startswith("NSpid:")), [])
            except OSError:
                continue
            if nspid and int(nspid[-1]) == pid:
                return kid
    return pid


class NamespacesLayer:
    """Phase ``namespaces`` (see the module docstring)."""

    name = "namespaces"
    phase = "namespaces"

    def __init__(self, provides_root: bool = False) -> None:
        self.provides_root = provides_root
        """True when workers get the read-only root (it re-creates the interpreter's
        path, so a worker user that cannot traverse it on the host still runs)."""

    def prepare(self, sandbox: Sandbox, info: SpawnInfo) -> None:
        return None

    def attach(self, sandbox: Sandbox, pid: int) -> None:
        return None

    def release(self, sandbox: Sandbox, info: SpawnInfo) -> str | None:
        return None

    def host_pid(self, parent: int, pid: int) -> int:
        """Translate ``pid``, a child of seed ``parent`` as the seed sees it, to a host pid.

        The launcher knows a namespaced seed by its stand-in's host pid; the seed (pid 1
        inside) reports its instances' namespace pids. Unchanged when no namespace.
        """
        return translate_pid(parent, pid)

    def apply(self, sandbox: Sandbox) -> None:
        types = {ns.type for ns in sandbox.linux.namespaces if not ns.path}
        if not types or _state["done"]:
            return  # none asked, or an instance inheriting its seed's namespaces
        flags = 0
        for t in types:
            flags |= L.NS_FLAGS[t]
        L.unshare(flags)
        if "pid" in types:
            user = sandbox.process.user
            enter_pid_namespace(user.uid, user.gid)
        _state["done"] = True
        if "mount" in types and sandbox.root is not None:
            build_and_pivot(sandbox)
        elif "mount" in types and "pid" in types:  # no new root: still show our own pids
            L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
            L.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
        if "uts" in types and sandbox.hostname:
            socket.sethostname(sandbox.hostname)
        if "network" in types and sandbox.annotations.get(ANN_LOOPBACK) == "up":
            L.loopback_up()
