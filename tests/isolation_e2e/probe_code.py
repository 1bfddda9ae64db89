"""Deployed as the *function code* of the ``isoprobe`` runtime (not imported by pytest).

Top-level code runs where user code runs (the seed, or the cold worker) and records the
process's state then; ``handle`` runs in the instance and reports what it sees and
what the kernel answers to syscalls the sandbox must deny. Uses only modules the
launcher already imported (a worker without a root file system cannot import more).
"""

import ctypes
import errno
import json
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

NR = {  # x86_64
    "personality": 135, "keyctl": 250, "ptrace": 101, "mount": 165, "unshare": 272,
    "setns": 308, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "io_uring_setup": 425, "clone3": 435, "kexec_load": 246, "init_module": 175,
    "socket": 41, "getpid": 39,
}  # fmt: skip
CALLS = {
    # name: args. Without the filter an unprivileged process gets success or EFAULT/EINVAL
    # for the first five; with it, EPERM (clone3: ENOSYS so libc falls back to clone).
    "personality": (0x0040000,),  # ADDR_NO_RANDOMIZE
    "keyctl": (0, -3, 0),  # KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING
    "socket_inet": (2, 1, 0),  # AF_INET, SOCK_STREAM
    "io_uring_setup": (1, 0),
    "perf_event_open": (0, 0, -1, -1, 0),
    "clone3": (0, 0),
    "ptrace": (0, 0, 0, 0),  # PTRACE_TRACEME
    "mount": (0, 0, 0, 0, 0),
    "unshare": (0x10000000,),  # CLONE_NEWUSER
    "setns": (-1, 0),
    "bpf": (0, 0, 0),
    "userfaultfd": (0,),
    "kexec_load": (0, 0, 0, 0),
    "init_module": (0, 0, 0),
    "getpid": (),
}


def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return {
        k: out.get(k, "")
        for k in (
            "Seccomp",
            "NoNewPrivs",
            "Uid",
            "Gid",
            "CapEff",
            "CapPrm",
            "CapBnd",
            "CapInh",
            "CapAmb",
            "NSpid",
        )
    }


def attempt(name, args):
    nr = NR["socket" if name == "socket_inet" else name]
    ctypes.set_errno(0)
    rc = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    err = ctypes.get_errno()
    if rc >= 0 and name == "socket_inet":
        os.close(rc)
    return "ok" if rc >= 0 else errno.errorcode.get(err, str(err))


def read(path):
    try:
        with open(path, "rb") as f:
            f.read(16)
        return "readable"
    except OSError as exc:
        return type(exc).__name__


LOAD = {"pid": os.getpid(), "status": status()}


def handle(req, body, host):
    pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
    procs = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:80]
            procs[pid] = {"uid": int(uid), "cmd": cmd}
        except (OSError, StopIteration):
            pass
    with open("/proc/self/net/dev") as f:
        ifaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    query = req["url"].partition("?")[2]
    paths = [p for p in query.split("&") if p.startswith("/")] + ["/etc/shadow", "/etc/passwd"]
    tmp_ok = True
    try:
        with open("/tmp/probe", "w") as f:
            f.write("x")
    except OSError:
        tmp_ok = False
    facts = {
        "load": LOAD,
        "pid": os.getpid(),
        "status": status(),
        "syscalls": {name: attempt(name, args) for name, args in CALLS.items()},
        "procs": procs,
        "ifaces": ifaces,
        "files": {p: read(p) for p in paths},
        "root_writable": os.access("/", os.W_OK),
        "tmp_writable": tmp_ok,
        "hostname": os.uname().nodename,
    }
    return 200, [("content-type", "application/json")], [json.dumps(facts).encode()]
