"""Things a sandboxed child checks about itself (run by harness.py after the layers)."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from typing import Any

libc = ctypes.CDLL(None, use_errno=True)


def _status() -> dict[str, str]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _errno_of(fn: Any, *args: Any) -> int:
    ctypes.set_errno(0)
    rc = fn(*args)
    return 0 if rc != -1 else ctypes.get_errno()


def status() -> dict[str, Any]:
    st = _status()
    keys = ("Seccomp", "NoNewPrivs", "Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().decode(errors="replace")
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    import resource

    return {
        **{k: st.get(k) for k in keys},
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "core": resource.getrlimit(resource.RLIMIT_CORE),
        "comm": comm,
        "cmdline": cmdline,
    }


def denied() -> dict[str, Any]:
    """errno of dangerous calls (0 = it worked)."""
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
    libc.personality.argtypes = [ctypes.c_ulong]
    res = {
        "ptrace": _errno_of(libc.ptrace, 16, os.getppid() or 1, None, None),  # PTRACE_ATTACH
        "unshare": _errno_of(libc.unshare, 0x40000000),
        "mount": _errno_of(libc.mount, b"tmpfs", b"/tmp", b"tmpfs", 0, None),
        "personality_bad": _errno_of(libc.personality, 0x0040000),
        "personality_ok": _errno_of(libc.personality, 0xFFFFFFFF),
        "bpf": _errno_of(libc.syscall, 321, 0, None, 0),
        "keyctl": _errno_of(libc.syscall, 250, 0, 0, 0),
        "clone_newuser": _errno_of(libc.syscall, 56, 0x10000000 | 17, 0, 0, 0, 0),
    }
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        res["socket_inet"] = 0
    except OSError as exc:
        res["socket_inet"] = exc.errno
    a, b = socket.socketpair()
    a.close()
    b.close()
    res["socketpair_unix"] = 0
    pid = os.fork()  # plain fork must still work (clone without namespace flags)
    if pid == 0:
        os._exit(7)
    res["fork_status"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    t = threading.Thread(target=lambda: None)  # pthread_create: clone3 -> ENOSYS -> clone
    t.start()
    t.join()
    res["thread"] = True
    return res


def kill_ptrace() -> dict[str, Any]:
    libc.ptrace(16, 1, None, None)
    return {"survived": True}


def view(paths: list[str]) -> dict[str, Any]:
    """What the child sees: its pids, network interfaces, readable files."""
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    with open("/proc/net/dev") as f:
        ifaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    readable = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                f.read(1)
            readable[p] = "read"
        except OSError as exc:
            readable[p] = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    tmp = "/tmp/probe-write"
    try:
        with open(tmp, "w") as f:
            f.write("x")
        wrote_tmp = True
    except OSError:
        wrote_tmp = False
    try:
        with open("/usr/probe-write", "w") as f:
            f.write("x")
        wrote_usr = True
    except OSError as exc:
        wrote_usr = errno.errorcode.get(exc.errno or 0)
    return {
        "pids": pids,
        "ifaces": ifaces,
        "readable": readable,
        "hostname": socket.gethostname(),
        "wrote_tmp": wrote_tmp,
        "wrote_usr": wrote_usr,
        "proc": status(),
    }


def load(threads: int = 4, seconds: float = 2.0) -> dict[str, Any]:
    """Varied work under the filter: threads, files, pipes, sleeps, forks and V8 JS."""
    import time

    errors: list[str] = []
    counts = [0] * threads

    def work(i: int) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                os.sched_yield()
                r, w = os.pipe()
                os.write(w, b"x" * 100)
                os.read(r, 100)
                os.close(r)
                os.close(w)
                with open("/proc/self/stat") as f:
                    f.read()
                time.sleep(0.0005)
                os.getrandom(16)
                sorted(os.listdir("/tmp"))
                counts[i] += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    js = None
    try:
        import STPyV8  # preloaded by the parent (as the launcher does)

        with STPyV8.JSContext() as ctx:
            js = ctx.eval(
                "let a=[];for(let i=0;i<200000;i++){a.push({i, s:String(i)})};"
                "JSON.stringify(a.slice(0,100)).length + a.length + Math.floor(Math.random())"
            )
    except Exception as exc:
        errors.append(f"v8: {type(exc).__name__}: {exc}")
    forks = 0
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        forks += 1
    for t in ts:
        t.join()
    return {"errors": errors, "iterations": sum(counts), "js": js, "forks": forks, "proc": status()}


def noop() -> dict[str, Any]:
    return {}
