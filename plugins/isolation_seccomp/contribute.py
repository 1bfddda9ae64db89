"""Fill the OCI-shaped sandbox of one worker process from this plugin's config."""

from __future__ import annotations

from typing import Any

from kernel.sandbox import Rlimit, Sandbox, Seccomp, User
from plugins.isolation_seccomp.layers import ANN_PDEATHSIG, ANN_SECCOMP_DIGEST, ANN_SECCOMP_LOG
from plugins.isolation_seccomp.report import WorkerUser

CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def contribute(
    sandbox: Sandbox,
    function_name: str,
    role: str,
    cfg: Any,
    user: WorkerUser,
    seccomp: Seccomp | None,
    digest: str = "",
) -> None:
    """Set process.user, capabilities, rlimits, noNewPrivileges, title and linux.seccomp."""
    proc = sandbox.process
    proc.user = User(uid=user.uid, gid=user.gid, additionalGids=[])
    if cfg.drop_capabilities:
        proc.capabilities = {name: [] for name in CAP_SETS}
    ours = {name: value for name, value in cfg.rlimits.items()}
    proc.rlimits = [rl for rl in proc.rlimits if rl.type not in ours] + [
        Rlimit(type=name, soft=value, hard=value) for name, value in sorted(ours.items())
    ]
    proc.noNewPrivileges = proc.noNewPrivileges or cfg.no_new_privs
    if not proc.title:
        proc.title = f"noslate:{function_name}:{role}"
    if cfg.pdeathsig:
        sandbox.annotations[ANN_PDEATHSIG] = cfg.pdeathsig
    if seccomp is not None:
        sandbox.linux.seccomp = seccomp
        sandbox.annotations[ANN_SECCOMP_LOG] = "1" if cfg.log_violations else "0"
        if digest:
            sandbox.annotations[ANN_SECCOMP_DIGEST] = digest
