"""The isolation layers of this plugin, one per phase (see :data:`kernel.sandbox.PHASES`).

``apply`` runs inside the new worker process, single-threaded, before user code; it
reads only the sandbox, so the daemon's contribution is what gets enforced. Every layer
is idempotent: an instance forked from an already-sandboxed seed re-runs them cheaply.
"""

from __future__ import annotations

from typing import Any

from kernel.interfaces import SpawnInfo
from kernel.sandbox import Sandbox
from plugins.isolation_seccomp import bpf, creds

ANN_PDEATHSIG = "noslate.pdeathsig"
ANN_SECCOMP_LOG = "noslate.seccomp.log"
ANN_SECCOMP_DIGEST = "noslate.seccomp.digest"

_state: dict[str, Any] = {"seccomp": None}
"""Per-process facts, inherited by forked children (the loaded seccomp policy key)."""


class _Layer:
    name = ""
    phase = ""

    def prepare(self, sandbox: Sandbox, info: SpawnInfo) -> None:
        return None

    def attach(self, sandbox: Sandbox, pid: int) -> None:
        return None

    def release(self, sandbox: Sandbox, info: SpawnInfo) -> str | None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} phase={self.phase}>"


class RlimitsLayer(_Layer):
    name = "rlimits"
    phase = "rlimits"

    def apply(self, sandbox: Sandbox) -> None:
        creds.apply_rlimits(sandbox.process.rlimits)


class CapabilitiesLayer(_Layer):
    name = "capabilities"
    phase = "capabilities"

    def apply(self, sandbox: Sandbox) -> None:
        caps = sandbox.process.capabilities
        if caps is None or any(caps.get(k) for k in caps):
            return  # unchanged, or a non-empty set we do not grant selectively
        import os

        creds.drop_capabilities(keep_for_setuid=sandbox.process.user.uid != os.geteuid())


class SetuidLayer(_Layer):
    name = "setuid"
    phase = "setuid"

    def apply(self, sandbox: Sandbox) -> None:
        user = sandbox.process.user
        creds.set_credentials(user.uid, user.gid, list(user.additionalGids))
        if sandbox.process.capabilities is not None and user.uid == 0:
            creds.clear_capabilities()


class NoNewPrivsLayer(_Layer):
    name = "no_new_privs"
    phase = "no_new_privs"

    def apply(self, sandbox: Sandbox) -> None:
        if sandbox.process.noNewPrivileges:
            creds.set_no_new_privs()


class PdeathsigLayer(_Layer):
    """Parent-death signal and the process title (both per process, so per instance)."""

    name = "pdeathsig"
    phase = "pdeathsig"

    def apply(self, sandbox: Sandbox) -> None:
        sig = sandbox.annotations.get(ANN_PDEATHSIG, "")
        if sig:
            creds.set_pdeathsig(sig)
        creds.set_title(sandbox.process.title)


class SeccompLayer(_Layer):
    """Loads ``linux.seccomp``; compiled once in the long-lived parent (see :mod:`.bpf`)."""

    name = "seccomp"
    phase = "seccomp"

    def __init__(self, default_policy: Any = None, log: bool = True) -> None:
        if default_policy is not None:  # warm the cache in this (parent) process
            bpf.compiled(default_policy, log=log, digest=bpf.policy_key(default_policy))

    def apply(self, sandbox: Sandbox) -> None:
        policy = sandbox.linux.seccomp
        if policy is None:
            return
        log = sandbox.annotations.get(ANN_SECCOMP_LOG, "1") == "1"
        digest = sandbox.annotations.get(ANN_SECCOMP_DIGEST) or bpf.policy_key(policy)
        key = f"{int(log)}:{digest}"
        if _state["seccomp"] == key:
            return  # inherited from the seed: already filtered by this very policy
        bpf.load(bpf.compiled(policy, log=log, digest=digest), log=log)
        _state["seccomp"] = key


def all_layers(cfg: Any, default_policy: Any) -> list[_Layer]:
    """The layers for config ``cfg`` (seccomp compiled now when enabled)."""
    layers: list[_Layer] = [RlimitsLayer(), CapabilitiesLayer(), SetuidLayer(), NoNewPrivsLayer()]
    layers.append(PdeathsigLayer())
    if cfg.seccomp:
        layers.append(SeccompLayer(default_policy, log=cfg.log_violations))
    return layers
