"""Hook implementations of the require_header plugin (no I/O at import time)."""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, InboundRequest, Rejection
from noslate_require_header.check import check
from noslate_require_header.config import RequireHeaderConfig

NAME = "require_header"
_state: dict[str, RequireHeaderConfig] = {"config": RequireHeaderConfig()}


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(NAME, RequireHeaderConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    _state["config"] = config.plugin_section(NAME) or RequireHeaderConfig()


@hookimpl
def noslate_admit(request: InboundRequest, function: Any) -> Rejection | None:
    return check(_state["config"], request, function.name)
