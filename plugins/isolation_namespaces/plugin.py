"""Hook implementations of isolation_namespaces (namespaces and the root file system)."""

from __future__ import annotations

import logging
import os
from typing import Any

from kernel.errors import StartupError
from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection
from plugins.isolation_namespaces import probe, spec
from plugins.isolation_namespaces.config import NamespacesConfig
from plugins.isolation_namespaces.layer import NamespacesLayer

NAME = "isolation_namespaces"
log = logging.getLogger("noslate.isolation_namespaces")
_state: dict[str, Any] = {}


def _cfg() -> NamespacesConfig:
    return _state.setdefault("cfg", NamespacesConfig())


def _report() -> dict[str, Any]:
    if "report" not in _state:
        _state["report"] = probe.probe(_cfg())
    return _state["report"]


def _usable() -> bool:
    return not _report()["problems"]


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(name=NAME, cls=NamespacesConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    section = config.plugin_section(NAME) if hasattr(config, "plugin_section") else None
    _state.clear()
    _state["cfg"] = section or NamespacesConfig()
    state_dir = getattr(getattr(config, "server", None), "state_dir", None)
    if state_dir:
        _state["state_dir"] = str(state_dir)


@hookimpl
def noslate_startup(kernel: Any) -> None:
    rep = _report()
    if rep["problems"]:
        text = "; ".join(rep["problems"])
        if _cfg().required:
            raise StartupError(
                f"isolation_namespaces is enabled but cannot work here: {text}. Run the daemon "
                "as root, or set [plugins.isolation_namespaces] required = false to run workers "
                "WITHOUT namespaces, or disable the plugin"
            )
        log.warning("!!! isolation_namespaces DISABLED (required = false): %s", text)
        return
    if _cfg().rootfs:
        os.makedirs(_cfg().root_dir, mode=0o755, exist_ok=True)
    if getattr(kernel, "state_dir", None):
        _state["state_dir"] = str(kernel.state_dir)


@hookimpl
def noslate_capability_report() -> dict[str, Any]:
    return dict(_report(), active=_usable())


@hookimpl
def noslate_sandbox_contribute(sandbox: Any, function: Any, role: str) -> None:
    if _usable():
        spec.contribute(sandbox, _cfg(), _state.get("state_dir"))


@hookimpl
def noslate_isolation_layers() -> list[Any]:
    cfg = _cfg()
    return [NamespacesLayer(provides_root=cfg.rootfs and "mount" in cfg.namespaces)] if _usable() else []
