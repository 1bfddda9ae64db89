"""``fork()`` straight into a cgroup on v2: clone3(CLONE_INTO_CGROUP), Linux >= 5.7.

The child is born in the target cgroup, so nothing is migrated and the
``cgroup.procs`` write (and its kernel lock wait) disappears. For a single-threaded
forking process (the launcher, a seed); returns like :func:`os.fork`.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal

CLONE_INTO_CGROUP = 0x200000000
SYS_CLONE3 = {"x86_64": 435, "aarch64": 435}.get(platform.machine())


class _CloneArgs(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "flags",
            "pidfd",
            "child_tid",
            "parent_tid",
            "exit_signal",
            "stack",
            "stack_size",
            "tls",
            "set_tid",
            "set_tid_size",
            "cgroup",
        )
    ]


def fork_into_cgroup(cgroup_dir: str) -> int:
    """Fork a child that starts inside v2 cgroup ``cgroup_dir``; 0 in the child, pid in the parent.

    Raises OSError (ENOSYS on old kernels or non-x86-64/aarch64, EBUSY/EOPNOTSUPP when
    the target is not a v2 leaf), in which case fork + join is the fallback.
    """
    if SYS_CLONE3 is None:
        raise OSError(38, "clone3 is not known on this architecture")
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        args = _CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=signal.SIGCHLD, cgroup=fd)
        api = ctypes.pythonapi  # keeps the GIL held across the call, as os.fork does
        libc = ctypes.PyDLL(None, use_errno=True)
        api.PyOS_BeforeFork()
        pid = libc.syscall(SYS_CLONE3, ctypes.byref(args), ctypes.sizeof(args))
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return 0
        err = ctypes.get_errno()
        api.PyOS_AfterFork_Parent()
        if pid < 0:
            raise OSError(err, f"clone3(CLONE_INTO_CGROUP) into {cgroup_dir}: {os.strerror(err)}")
        return pid
    finally:
        os.close(fd)  # in the parent and in the child (each has its own copy)
