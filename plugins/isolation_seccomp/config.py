"""The ``[plugins.isolation_seccomp]`` config section."""

from __future__ import annotations

import signal
from typing import Any

from attrs import field, frozen, validators

from plugins.isolation_seccomp import creds, policy


def _families(_i: Any, a: Any, value: list[str]) -> None:
    if value != ["*"]:
        policy.family_numbers(value)


def _signal(_i: Any, a: Any, value: str) -> None:
    if value and value not in signal.Signals.__members__:
        raise ValueError(f"{a.name} must be a signal name like SIGKILL, got {value!r}")


def _rlimits(_i: Any, a: Any, value: dict[str, int]) -> None:
    for name, limit in value.items():
        if name in creds.FORBIDDEN_RLIMITS:
            raise ValueError(f"{name} may not be set: {creds.FORBIDDEN_RLIMITS[name]}")
        creds.rlimit_number(name)
        if name == "RLIMIT_NOFILE" and 0 <= limit < creds.MIN_NOFILE:
            raise ValueError(f"RLIMIT_NOFILE must be >= {creds.MIN_NOFILE} (V8 and Node need it)")


@frozen(kw_only=True)
class SeccompConfig:
    """Syscall filter, credentials and rlimits of every worker process."""

    required: bool = True
    """Fail start-up when enabled but unusable (False: warn loudly and run without)."""
    seccomp: bool = True
    """Load the seccomp filter (phase ``seccomp``)."""
    mode: str = field(default="denylist", validator=validators.in_(["denylist", "allowlist"]))
    """``denylist``: allow all but the dangerous calls; ``allowlist``: deny all but Docker's list."""
    violation: str = field(default="errno", validator=validators.in_(["errno", "kill"]))
    """Denied call in denylist mode: fail with EPERM, or kill the process (SIGSYS).
    The allowlist mode always uses EPERM."""
    log_violations: bool = True
    """Ask the kernel to log denied calls (audit records type=1326 in the kernel log)."""
    extra_deny: list[str] = field(factory=list)
    """More syscall names to deny."""
    extra_allow: list[str] = field(factory=list)
    """Syscall names to allow (removed from the deny list, added to the allow list)."""
    socket_families: list[str] = field(factory=lambda: ["AF_UNIX"], validator=_families)
    """Families ``socket(2)`` may create (outbound traffic goes through the daemon);
    ``["*"]`` allows every family, ``[]`` none."""
    user: str = ""
    """Worker user: a name, ``uid`` or ``uid:gid``. Empty: ``noslate-worker`` if that
    user exists (scripts/create-worker-user.sh), else ``nobody`` (65534)."""
    no_new_privs: bool = True
    """Set no_new_privs (execve can never gain privileges)."""
    drop_capabilities: bool = True
    """Empty every capability set (bounding, effective, permitted, inheritable, ambient)."""
    pdeathsig: str = field(default="SIGKILL", validator=_signal)
    """Signal a worker gets when its parent dies (set after setuid); empty: none."""
    rlimits: dict[str, int] = field(
        factory=lambda: {"RLIMIT_NOFILE": 4096, "RLIMIT_CORE": 0}, validator=_rlimits
    )
    """rlimits (soft = hard) by name; RLIMIT_AS is refused (it kills V8)."""
