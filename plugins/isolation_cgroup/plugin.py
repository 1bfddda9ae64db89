"""Hook implementations of isolation_cgroup (see ``docs/isolation-cgroup.md``)."""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, IsolationLayer, Service
from kernel.profile import FunctionProfile
from kernel.sandbox import Sandbox
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.layer import CgroupLayer
from plugins.isolation_cgroup.state import STATE

SECTION = "isolation_cgroup"
_LAYER = CgroupLayer(STATE)


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=CgroupConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    section = None
    getter = getattr(config, "plugin_section", None)
    if getter is not None:
        section = getter(SECTION)
    STATE.config = section if isinstance(section, CgroupConfig) else CgroupConfig()


@hookimpl
def noslate_startup(kernel: Any) -> None:
    STATE.start(kernel)


@hookimpl
def noslate_services(kernel: Any) -> list[Service]:
    return [Service(name="isolation_cgroup.trim", run=STATE.run_trimmer)]


@hookimpl
def noslate_shutdown(kernel: Any) -> None:
    STATE.stop()


@hookimpl
def noslate_capability_report() -> dict[str, Any]:
    return {"isolation_cgroup": STATE.report()}


@hookimpl
def noslate_sandbox_contribute(sandbox: Sandbox, function: FunctionProfile, role: str) -> None:
    if not STATE.active:
        if STATE.config.enabled and STATE.unusable:
            sandbox.annotations["noslate.cgroup"] = f"unenforced: {STATE.unusable}"
        return
    limit = function.resource_limit
    res = sandbox.linux.resources
    res.memory_limit = limit.memory
    res.cpu_period = STATE.config.cpu_period_us
    res.cpu_quota = None if limit.cpu is None else max(1000, round(limit.cpu * res.cpu_period))
    res.pids_limit = limit.pids + (STATE.config.seed_extra_pids if role == "seed" else 0)


@hookimpl
def noslate_isolation_layers() -> list[IsolationLayer]:
    return [_LAYER]
