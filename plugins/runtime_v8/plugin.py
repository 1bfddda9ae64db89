"""Hook implementations of runtime_v8: the ``aworker`` runtime on embedded V8.

Author quickstart: see ``docs/runtime.md``. The runtime prepares code at deploy time
(esbuild), starts cold workers through the launcher, and names the ``load``/``serve``
entries the warmfork plugin uses for seeds.
"""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, RuntimeSpec
from plugins.runtime_v8 import engine
from plugins.runtime_v8.config import RuntimeV8Config

SECTION = "runtime_v8"
_config = RuntimeV8Config()


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=RuntimeV8Config)


@hookimpl
def noslate_configure(config: Any) -> None:
    global _config
    getter = getattr(config, "plugin_section", None)
    section = getter(SECTION) if getter is not None else None
    _config = section if isinstance(section, RuntimeV8Config) else RuntimeV8Config()
    # read by plugins.runtime_v8.preload in the launcher (V8 flags before import)
    engine.configured_flags = tuple(_config.all_flags())


@hookimpl
def noslate_runtimes() -> list[RuntimeSpec]:
    from plugins.runtime_v8.runtime import NAME, V8Runtime

    return [
        RuntimeSpec(
            name=NAME,
            factory=lambda kernel: V8Runtime(kernel, _config),
            description="Web-interoperable JavaScript on embedded V8 (STPyV8): service workers, ES modules",
        )
    ]


@hookimpl
def noslate_launcher_preload() -> list[str]:
    return ["plugins.runtime_v8.preload"]


@hookimpl
def noslate_capability_report() -> dict[str, Any]:
    from plugins.runtime_v8 import runtime_js

    return {"runtime_v8": {"bundle": runtime_js.BUNDLE.exists(), "v8_flags": list(_config.all_flags())}}
