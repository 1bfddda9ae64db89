"""warmfork: start instances by forking a per-function-version seed (hooks only).

A seed has loaded the runtime and run the user's top-level code and ``install``; each
fork of it is an instance. Needs a runtime that names its seed entry points
(``runtime.seed_entries = ("pkg.mod:load", "pkg.mod:serve")``) and the kernel's
launcher. Profile ``worker.disableSeed: true`` (or disabling this plugin) starts
instances cold. Design: ``docs/warmfork.md``.
"""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, Service
from plugins.warmfork.config import WarmforkConfig
from plugins.warmfork.manager import SeedManager

_manager = SeedManager()


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection("warmfork", WarmforkConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    _manager.configure(config.plugin_section("warmfork") or WarmforkConfig())


@hookimpl
def noslate_startup(kernel: Any) -> None:
    _manager.bind(kernel)


@hookimpl
def noslate_services(kernel: Any) -> list[Service]:
    return [Service("warmfork", _manager.run)]


@hookimpl
def noslate_instance_starter(runtime: Any, function: Any) -> Any:
    if function.worker.disable_seed:
        return None
    return _manager.starter_for(runtime)


@hookimpl
def noslate_shutdown(kernel: Any) -> None:
    _manager.close()


@hookimpl
def noslate_capability_report() -> dict[str, Any]:
    return _manager.report()
