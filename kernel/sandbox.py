"""The sandbox description of one worker process, shaped like an OCI runtime-spec config.

Isolation plugins fill it in (``noslate_sandbox_contribute``); the launcher applies it
in a new process through the isolation layers, in this fixed order of phases:
:data:`PHASES`. ``noslate instances --json`` shows it (``Sandbox.to_oci()``).
Field names follow https://github.com/opencontainers/runtime-spec/blob/main/config.md.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field

PHASES = (
    "cgroup",
    "namespaces",
    "rlimits",
    "capabilities",
    "setuid",
    "no_new_privs",
    "pdeathsig",
    "seccomp",
)
"""The order isolation layers are applied in, before any user code runs."""


@define
class User:
    """``process.user``: the credentials the process runs with."""

    uid: int = 0
    gid: int = 0
    additionalGids: list[int] = field(factory=list)


@define
class Rlimit:
    """One ``process.rlimits`` entry, e.g. ``RLIMIT_NOFILE``."""

    type: str
    soft: int
    hard: int


@define
class Process:
    """``process``: how the program runs."""

    user: User = field(factory=User)
    noNewPrivileges: bool = False
    capabilities: dict[str, list[str]] | None = None
    """OCI capability sets (bounding, effective, inheritable, permitted, ambient); None = unchanged."""
    rlimits: list[Rlimit] = field(factory=list)
    oomScoreAdj: int | None = None
    title: str = ""
    """Process name shown by ps (ours: ``noslate:<function>@<version>#<instance>``)."""
    env: dict[str, str] = field(factory=dict)


@define
class Root:
    """``root``: the process's root file system (None in Sandbox = the host's)."""

    path: str
    readonly: bool = True


@define
class Mount:
    """One ``mounts`` entry."""

    destination: str
    source: str
    type: str = "bind"
    options: list[str] = field(factory=list)


@define
class Namespace:
    """One ``linux.namespaces`` entry (type: pid, network, mount, ipc, uts, user, cgroup)."""

    type: str
    path: str = ""


@define
class Resources:
    """``linux.resources`` (the subset we enforce)."""

    memory_limit: int | None = None
    """Bytes (``memory.limit``)."""
    cpu_quota: int | None = None
    """Microseconds per period (``cpu.quota``)."""
    cpu_period: int = 100_000
    pids_limit: int | None = None


@define
class SeccompRule:
    """One ``linux.seccomp.syscalls`` entry."""

    names: list[str]
    action: str
    errnoRet: int | None = None
    args: list[dict[str, Any]] = field(factory=list)


@define
class Seccomp:
    """``linux.seccomp``."""

    defaultAction: str = "SCMP_ACT_ALLOW"
    syscalls: list[SeccompRule] = field(factory=list)
    defaultErrnoRet: int | None = None


@define
class Linux:
    """``linux``: namespaces, resources, cgroup path and seccomp."""

    namespaces: list[Namespace] = field(factory=list)
    resources: Resources = field(factory=Resources)
    cgroupsPath: str = ""
    seccomp: Seccomp | None = None
    maskedPaths: list[str] = field(factory=list)
    readonlyPaths: list[str] = field(factory=list)


@define
class Sandbox:
    """Everything the launcher applies to one worker process before user code runs."""

    process: Process = field(factory=Process)
    root: Root | None = None
    mounts: list[Mount] = field(factory=list)
    hostname: str = ""
    linux: Linux = field(factory=Linux)
    annotations: dict[str, str] = field(factory=dict)
    """Free-form facts (``noslate.function``, ``noslate.role``, plugin-private keys)."""

    def to_oci(self) -> dict[str, Any]:
        """The OCI-shaped JSON data (what ``noslate instances --json`` shows)."""
        # the process-wide converter's generated code: the same data as attrs' asdict,
        # ~4x faster (this runs on every instance start: measured 2.6 -> 0.6 ms for a
        # sandbox with namespaces and seccomp)
        return {"ociVersion": "1.0.2", **_converter().unstructure(self)}

    @classmethod
    def from_oci(cls, data: dict[str, Any]) -> Sandbox:
        """Rebuild a Sandbox from :meth:`to_oci` data (the launcher receives it this way)."""
        data = {k: v for k, v in data.items() if k != "ociVersion"}
        return _converter().structure(data, cls)


def contributed(hooks: Any, function: Any, role: str, title: str, annotations: dict[str, str]) -> Sandbox:
    """A new sandbox for a process of ``function`` in ``role``, filled in by the isolation
    plugins (``noslate_sandbox_contribute``); ``hooks`` None leaves it empty."""
    sandbox = Sandbox()
    sandbox.process.title = title
    sandbox.annotations.update(annotations)
    if hooks is not None and function is not None:
        hooks.sandbox_contribute(sandbox=sandbox, function=function, role=role)
    return sandbox


_CONVERTERS: list[Any] = []


def _converter() -> Any:
    """One converter per process, made on first use: building one (cattrs code
    generation) costs ~50 ms, which a forked instance must not pay per start.
    Processes forked after the first use (seeds, instances) inherit it ready."""
    if not _CONVERTERS:
        from kernel.structure import make_converter

        _CONVERTERS.append(make_converter())
    return _CONVERTERS[0]
