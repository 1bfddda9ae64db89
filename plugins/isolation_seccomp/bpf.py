"""Compile an OCI seccomp section to a BPF program once, load it in children cheaply.

Compiling goes through libseccomp (``pyseccomp``, imported lazily: ~22-40 ms, so only
the long-lived launcher pays it). The compiled program is cached in the process by the
policy's JSON, so every child forked afterwards inherits it and loads it with one
``seccomp(2)`` call (no libseccomp work in the child).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import platform
from typing import Any

from attrs import asdict

from kernel.sandbox import Seccomp

SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(platform.machine(), 317)
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_LOG = 2
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

_OPS = {"NE": 1, "LT": 2, "LE": 3, "EQ": 4, "GE": 5, "GT": 6, "MASKED_EQ": 7}
_cache: dict[str, bytes] = {}
_libc = ctypes.CDLL(None, use_errno=True)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def policy_key(policy: Seccomp) -> str:
    """A stable cache key for ``policy`` (sha256 of its JSON; the daemon puts it in the
    sandbox annotation ``noslate.seccomp.digest`` so children need not recompute it)."""
    text = json.dumps(asdict(policy), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _action(sc: Any, name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ALLOW":
        return sc.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(1 if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_KILL_PROCESS":
        return sc.KILL_PROCESS
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return sc.KILL_THREAD
    if name == "SCMP_ACT_LOG":
        return sc.LOG
    if name == "SCMP_ACT_TRAP":
        return sc.TRAP
    raise ValueError(f"unsupported seccomp action {name!r} in linux.seccomp")


def compile_policy(policy: Seccomp, *, log: bool = True) -> tuple[bytes, list[str]]:
    """Compile ``policy`` for the native arch; return (BPF bytes, unknown syscall names).

    Names the kernel headers of this arch do not know (e.g. ``vm86`` on x86_64) are
    skipped and returned, never an error.
    """
    import pyseccomp as sc

    default = _action(sc, policy.defaultAction, policy.defaultErrnoRet)
    flt = sc.SyscallFilter(default)
    if log:
        flt.set_attr(sc.Attr.CTL_LOG, 1)
    unknown: list[str] = []
    for rule in policy.syscalls:
        action = _action(sc, rule.action, rule.errnoRet)
        if action == default and not rule.args:
            continue
        args = [
            sc.Arg(a["index"], _OPS[str(a["op"]).removeprefix("SCMP_CMP_")], a["value"], a.get("valueTwo", 0))
            for a in rule.args
        ]
        for name in rule.names:
            if sc.resolve_syscall(sc.Arch.NATIVE, name) == -1:  # __NR_SCMP_ERROR
                unknown.append(name)
                continue
            flt.add_rule(action, name, *args)
    rfd, wfd = os.pipe()
    try:
        with os.fdopen(wfd, "wb", closefd=False) as out:
            flt.export_bpf(out)
        os.close(wfd)
        wfd = -1
        chunks = []
        while chunk := os.read(rfd, 65536):
            chunks.append(chunk)
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
    return b"".join(chunks), sorted(set(unknown))


def compiled(policy: Seccomp, *, log: bool = True, digest: str = "") -> bytes:
    """The cached BPF program for ``policy`` (compiled on first use in this process)."""
    key = f"{int(log)}:{digest or policy_key(policy)}"
    prog = _cache.get(key)
    if prog is None:
        prog, _ = compile_policy(policy, log=log)
        _cache[key] = prog
    return prog


def is_cached(policy: Seccomp, *, log: bool = True) -> bool:
    return f"{int(log)}:{policy_key(policy)}" in _cache


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)``: required to load a filter without CAP_SYS_ADMIN."""
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(err)}")


def load(prog: bytes, *, log: bool = True) -> None:
    """Install BPF program ``prog`` on the calling thread (and its future children)."""
    if not prog or len(prog) % 8:
        raise ValueError(f"invalid BPF program of {len(prog)} bytes")
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    flags = SECCOMP_FILTER_FLAG_LOG if log else 0
    _libc.syscall.restype = ctypes.c_long
    for attempt in (1, 2):
        rc = _libc.syscall(
            ctypes.c_long(SYS_SECCOMP),
            ctypes.c_long(SECCOMP_SET_MODE_FILTER),
            ctypes.c_long(flags),
            ctypes.byref(fprog),
        )
        if rc == 0:
            return
        if attempt == 1 and ctypes.get_errno() == errno.EACCES:
            set_no_new_privs()  # no CAP_SYS_ADMIN: the kernel requires no_new_privs
            continue
        break
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER) failed: {os.strerror(err)}")
