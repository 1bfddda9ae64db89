"""The seccomp policy: which system calls a worker process may not make.

The policy is data (an OCI ``linux.seccomp`` section, :class:`kernel.sandbox.Seccomp`)
built here from the plugin's config; :mod:`.bpf` compiles it. Two modes:

``denylist`` (default)
    Allow everything except :data:`DENY` (a superset of what Docker's default profile
    blocks for a container without extra capabilities), namespace flags to ``clone``,
    non-Docker ``personality`` values and socket families outside the allowed set.
``allowlist``
    Deny (EPERM, never kill) everything except :data:`ALLOW` (Docker's default
    allow-list without the capability-gated calls).

``clone3`` always gets ENOSYS so libc falls back to ``clone``, whose flags can be
inspected (clone3 passes them in memory a filter cannot read).
"""

from __future__ import annotations

import errno

from kernel.sandbox import Seccomp, SeccompRule

EPERM = errno.EPERM
ENOSYS = errno.ENOSYS

# Docker blocks these (no capability in its default set allows them) or they need
# CAP_SYS_ADMIN/CAP_SYS_PTRACE/CAP_SYS_NICE/... which workers never have.
DENY: tuple[str, ...] = (
    # tracing and other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "process_madvise",
    # namespaces and mounts
    "mount", "umount2", "pivot_root", "unshare", "setns", "chroot",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    # kernel attack surface
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "fanotify_init", "lookup_dcookie", "modify_ldt",
    # kernel keyring
    "keyctl", "add_key", "request_key",
    # modules, kexec, reboot, swap, accounting, quotas
    "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms",
    "query_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "quotactl_fd", "nfsservctl",
    # file handles (bypass path permission checks)
    "open_by_handle_at", "name_to_handle_at",
    # clocks, host identity, logs, consoles
    "settimeofday", "clock_settime", "clock_adjtime", "stime", "syslog",
    "sethostname", "setdomainname", "vhangup",
    # raw I/O ports, vm86
    "iopl", "ioperm", "vm86", "vm86old",
    # NUMA policy (CAP_SYS_NICE in Docker)
    "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "migrate_pages",
    "set_mempolicy_home_node",
    # obsolete
    "uselib", "ustat", "sysfs", "_sysctl",
)  # fmt: skip

ALLOW: tuple[str, ...] = (
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk",
    "cachestat", "capget", "capset", "chdir", "chmod", "chown", "clock_getres",
    "clock_gettime", "clock_nanosleep", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown",
    "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
    "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
    "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu",
    "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr",
    "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
    "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify",
    "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl",
    "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority",
    "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "set_robust_list",
    "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "socketpair", "splice", "stat", "statfs", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
    "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate",
    "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "write", "writev",
)  # fmt: skip

# clone(2) flags that create namespaces (Docker's mask 0x7E020000 plus CLONE_NEWTIME).
CLONE_NS_FLAGS: dict[str, int] = {
    "CLONE_NEWTIME": 0x00000080,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
CLONE_NS_MASK = sum(CLONE_NS_FLAGS.values())

# personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 variants, query.
PERSONALITY_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

AF_MAX = 46
SOCKET_FAMILIES: dict[str, int] = {
    "AF_UNSPEC": 0, "AF_UNIX": 1, "AF_INET": 2, "AF_AX25": 3, "AF_IPX": 4,
    "AF_APPLETALK": 5, "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_ATMPVC": 8, "AF_X25": 9,
    "AF_INET6": 10, "AF_ROSE": 11, "AF_DECnet": 12, "AF_NETBEUI": 13, "AF_SECURITY": 14,
    "AF_KEY": 15, "AF_NETLINK": 16, "AF_PACKET": 17, "AF_ASH": 18, "AF_ECONET": 19,
    "AF_ATMSVC": 20, "AF_RDS": 21, "AF_SNA": 22, "AF_IRDA": 23, "AF_PPPOX": 24,
    "AF_WANPIPE": 25, "AF_LLC": 26, "AF_IB": 27, "AF_MPLS": 28, "AF_CAN": 29,
    "AF_TIPC": 30, "AF_BLUETOOTH": 31, "AF_IUCV": 32, "AF_RXRPC": 33, "AF_ISDN": 34,
    "AF_PHONET": 35, "AF_IEEE802154": 36, "AF_CAIF": 37, "AF_ALG": 38, "AF_NFC": 39,
    "AF_VSOCK": 40, "AF_KCM": 41, "AF_QIPCRTR": 42, "AF_SMC": 43, "AF_XDP": 44,
    "AF_MCTP": 45,
}  # fmt: skip


def _arg(index: int, op: str, value: int, value_two: int = 0) -> dict[str, object]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": f"SCMP_CMP_{op}"}


def _deny_action(violation: str) -> str:
    return "SCMP_ACT_KILL_PROCESS" if violation == "kill" else "SCMP_ACT_ERRNO"


def _rule(names: list[str], action: str, args: list[dict[str, object]] | None = None) -> SeccompRule:
    errno_ret = EPERM if action == "SCMP_ACT_ERRNO" else None
    return SeccompRule(names=names, action=action, errnoRet=errno_ret, args=args or [])


def personality_deny_args() -> list[list[dict[str, object]]]:
    """Argument filters matching every personality value Docker does not allow.

    libseccomp allows one comparison per argument per rule, so the complement of
    :data:`PERSONALITY_ALLOWED` is covered with masked comparisons on the low 32 bits
    (the kernel reads an ``unsigned int``): bit 0 set with any other bit clear (not the
    0xFFFFFFFF query), or bit 0 clear with a bit outside 0x20008 set.
    """
    out = [[_arg(0, "MASKED_EQ", 1 | (1 << c), 1)] for c in range(1, 32)]
    out += [[_arg(0, "MASKED_EQ", 1 | (1 << b), 1 << b)] for b in range(1, 32) if b not in (3, 17)]
    return out


def family_numbers(names: list[str]) -> list[int]:
    """Socket family names (``AF_UNIX``) to numbers; raise ValueError naming a bad one."""
    out = []
    for name in names:
        if name not in SOCKET_FAMILIES:
            raise ValueError(f"unknown socket family {name!r}; use names like AF_UNIX, AF_INET")
        out.append(SOCKET_FAMILIES[name])
    return out


def build(
    *,
    mode: str = "denylist",
    violation: str = "errno",
    extra_deny: list[str] | None = None,
    extra_allow: list[str] | None = None,
    socket_families: list[str] | None = None,
) -> Seccomp:
    """The OCI seccomp section for ``mode`` (see the module docstring).

    ``socket_families`` None means any family; a list restricts ``socket(2)`` to it.
    """
    extra_deny = list(extra_deny or [])
    extra_allow = list(extra_allow or [])
    families = None if socket_families is None else set(family_numbers(socket_families))
    rules: list[SeccompRule] = [SeccompRule(names=["clone3"], action="SCMP_ACT_ERRNO", errnoRet=ENOSYS)]
    if mode == "allowlist":
        # Default EPERM, never kill: a rare syscall must fail, not kill a busy worker.
        allowed = sorted((set(ALLOW) | set(extra_allow)) - set(extra_deny) - {"clone3"})
        rules.append(_rule(allowed, "SCMP_ACT_ALLOW"))
        rules.append(_rule(["clone"], "SCMP_ACT_ALLOW", [_arg(0, "MASKED_EQ", CLONE_NS_MASK, 0)]))
        for value in PERSONALITY_ALLOWED:
            rules.append(_rule(["personality"], "SCMP_ACT_ALLOW", [_arg(0, "EQ", value)]))
        if families is None:
            rules.append(_rule(["socket"], "SCMP_ACT_ALLOW"))
        else:
            for fam in sorted(families):
                rules.append(_rule(["socket"], "SCMP_ACT_ALLOW", [_arg(0, "EQ", fam)]))
        return Seccomp(defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=EPERM, syscalls=rules)

    action = _deny_action(violation)
    denied = sorted((set(DENY) | set(extra_deny)) - set(extra_allow))
    rules.append(_rule(denied, action))
    for flag in CLONE_NS_FLAGS.values():
        rules.append(_rule(["clone"], action, [_arg(0, "MASKED_EQ", flag, flag)]))
    for args in personality_deny_args():
        rules.append(_rule(["personality"], action, args))
    if families is not None:
        for fam in range(AF_MAX):
            if fam not in families:
                rules.append(_rule(["socket"], action, [_arg(0, "EQ", fam)]))
        rules.append(_rule(["socket"], action, [_arg(0, "GE", AF_MAX)]))
    return Seccomp(defaultAction="SCMP_ACT_ALLOW", syscalls=rules)
