"""Hook implementations of isolation_seccomp (seccomp, credentials, rlimits)."""

from __future__ import annotations

import logging
from typing import Any

from kernel.errors import StartupError
from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection
from plugins.isolation_seccomp import contribute as _contribute
from plugins.isolation_seccomp import layers as _layers
from plugins.isolation_seccomp import policy, report
from plugins.isolation_seccomp.config import SeccompConfig

NAME = "isolation_seccomp"
log = logging.getLogger("noslate.isolation_seccomp")
_state: dict[str, Any] = {}


def _cfg() -> SeccompConfig:
    if "cfg" not in _state:
        _state["cfg"] = SeccompConfig()
    return _state["cfg"]


def _report() -> dict[str, Any]:
    if "report" not in _state:
        _state["report"] = report.probe(_cfg())
    return _state["report"]


def _usable() -> bool:
    """False when the host cannot enforce the layers and ``required = false``."""
    return not _report()["problems"]


def _policy():
    if "policy" not in _state:
        cfg = _cfg()
        families = None if cfg.socket_families == ["*"] else list(cfg.socket_families)
        _state["policy"] = (
            policy.build(
                mode=cfg.mode,
                violation=cfg.violation,
                extra_deny=cfg.extra_deny,
                extra_allow=cfg.extra_allow,
                socket_families=families,
            )
            if cfg.seccomp
            else None
        )
    return _state["policy"]


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(name=NAME, cls=SeccompConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    section = config.plugin_section(NAME) if hasattr(config, "plugin_section") else None
    _state.clear()
    _state["cfg"] = section or SeccompConfig()


@hookimpl
def noslate_startup(kernel: Any) -> None:
    rep = _report()
    layers = list(getattr(kernel, "layers", None) or [])
    rooted = any(getattr(layer, "provides_root", False) for layer in layers)
    for warning in rep["warnings"]:
        if not (rooted and rep.get("interpreter_blocked") and "cannot traverse" in warning):
            log.warning("isolation_seccomp: %s", warning)
    if rep["problems"]:
        text = "; ".join(rep["problems"])
        if _cfg().required:
            raise StartupError(
                f"isolation_seccomp is enabled but cannot work here: {text}. Fix that, or set "
                "[plugins.isolation_seccomp] required = false to run workers WITHOUT it, or "
                "disable the plugin"
            )
        log.warning("!!! isolation_seccomp DISABLED (required = false): %s", text)
        return
    # (a kernel without ``layers`` is a test harness that forks without exec: no check)
    blocked = report.interpreter_problem(rep, layers) if hasattr(kernel, "layers") else None
    if blocked and _cfg().required:
        raise StartupError(f"isolation_seccomp: {blocked}")
    if blocked:
        log.warning("!!! isolation_seccomp (required = false): %s; workers will fail to start", blocked)


@hookimpl
def noslate_capability_report() -> dict[str, Any]:
    return dict(_report(), active=_usable())


@hookimpl
def noslate_sandbox_contribute(sandbox: Any, function: Any, role: str) -> None:
    if not _usable():
        return
    if "user" not in _state:
        _state["user"] = report.resolve_user(_cfg().user)
    pol = _policy()
    if pol is not None and "digest" not in _state:
        from plugins.isolation_seccomp.bpf import policy_key

        _state["digest"] = policy_key(pol)
    _contribute.contribute(
        sandbox, function.name, role, _cfg(), _state["user"], pol, _state.get("digest", "")
    )


@hookimpl
def noslate_isolation_layers() -> list[Any]:
    if not _usable():
        return []
    if "layers" not in _state:
        _state["layers"] = _layers.all_layers(_cfg(), _policy())
    return list(_state["layers"])


@hookimpl
def noslate_launcher_preload() -> list[str]:
    return ["prctl", "pyseccomp"] if _cfg().seccomp else ["prctl"]
