"""Credentials, capabilities, rlimits and process names, applied inside a new process.

Each function runs in the worker process (single-threaded, before user code), in the
order of :data:`kernel.sandbox.PHASES`. python-prctl does the prctl work; the few calls
it lacks (ambient set, capabilities newer than its build) go through libc.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal

from kernel.oslib import cap_last_cap, capbset_drop, libc, read_status
from kernel.sandbox import Rlimit

PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# Limits that break V8 or Node and are refused in the config.
FORBIDDEN_RLIMITS = {"RLIMIT_AS": "V8 reserves large virtual ranges; limit memory with cgroups"}
MIN_NOFILE = 1024


def rlimit_number(name: str) -> int:
    """``RLIMIT_NOFILE`` -> ``resource.RLIMIT_NOFILE``; ValueError names the bad one."""
    value = getattr(resource, name, None)
    if not name.startswith("RLIMIT_") or not isinstance(value, int):
        raise ValueError(f"unknown rlimit {name!r}; use names like RLIMIT_NOFILE, RLIMIT_CORE")
    return value


def apply_rlimits(rlimits: list[Rlimit]) -> None:
    """setrlimit each entry; a hard limit above the current one is capped to it."""
    for rl in rlimits:
        num = rlimit_number(rl.type)
        _, cur_hard = resource.getrlimit(num)
        hard = rl.hard
        if cur_hard != resource.RLIM_INFINITY and (hard < 0 or hard > cur_hard):
            hard = cur_hard  # raising needs CAP_SYS_RESOURCE; keep the host's ceiling
        soft = hard if (rl.soft < 0 or (hard >= 0 and rl.soft > hard)) else rl.soft
        resource.setrlimit(num, (soft, hard))


def drop_capabilities(*, keep_for_setuid: bool) -> None:
    """Empty the bounding, inheritable and ambient sets; effective/permitted too unless
    ``keep_for_setuid`` (then only CAP_SETUID and CAP_SETGID stay, for the setuid phase,
    which empties them)."""
    import prctl

    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if prctl.capbset.setpcap:
        for cap in range(cap_last_cap() + 1):
            capbset_drop(cap)
    prctl.cap_inheritable.limit()
    if keep_for_setuid and os.geteuid() == 0:
        prctl.cap_effective.limit("setuid", "setgid")
        prctl.cap_permitted.limit("setuid", "setgid")
    else:
        clear_capabilities()


def clear_capabilities() -> None:
    """Empty the effective and permitted sets (idempotent)."""
    import prctl

    prctl.cap_effective.limit()
    prctl.cap_permitted.limit()


def set_credentials(uid: int, gid: int, groups: list[int]) -> None:
    """setgroups, setresgid, setresuid (in that order), then empty leftover capabilities.

    Already running as ``uid`` (a forked instance of a seed that did this): no-op.
    """
    if os.getuid() == uid and os.geteuid() == uid and os.getgid() == gid:
        return
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if uid != 0:
        clear_capabilities()
        if os.getresuid() != (uid, uid, uid):
            raise OSError(f"setresuid({uid}) did not take effect")


def set_no_new_privs() -> None:
    import prctl

    prctl.set_no_new_privs(1)


def set_pdeathsig(signame: str) -> None:
    """Parent-death signal (after setuid, which clears it); exit now if the parent is gone."""
    import prctl

    sig = signal.Signals[signame]
    prctl.set_pdeathsig(sig)
    # Orphaned already (reparented to init)? Inside a pid namespace ppid 1 is the seed.
    if os.getppid() == 1 and not _in_child_pid_ns():
        os._exit(128 + sig)


def _in_child_pid_ns() -> bool:
    try:
        return len(read_status().get("NSpid", "").split()) > 1
    except OSError:
        return False


def set_title(title: str) -> None:
    """Process name for ps/top: comm (15 bytes) and the full command line."""
    if not title:
        return
    import prctl

    prctl.set_name(title[:15])
    with contextlib.suppress(OSError, ValueError):
        prctl.set_proctitle(title)
