"""Small Linux helpers through libc that more than one isolation plugin needs.

Plugins never import each other, so the OS calls they share live here. Nothing runs
at import time beyond opening the C library handle.
"""

from __future__ import annotations

import ctypes
import os

PR_CAPBSET_DROP = 24

libc = ctypes.CDLL(None, use_errno=True)


def check(rc: int, what: str) -> None:
    """Raise ``OSError(errno, "<what>: <strerror>")`` when a libc call returned non-zero."""
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def cap_last_cap() -> int:
    """The highest capability number this kernel knows (40 when /proc does not say)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def capbset_drop(cap: int) -> None:
    """Drop ``cap`` from the bounding set; EINVAL for caps this kernel lacks is ignored."""
    libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def read_status(pid: int | str = "self") -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict (Seccomp, NoNewPrivs, Uid, CapEff, NSpid, ...)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out
