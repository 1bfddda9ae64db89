"""Hook implementations of runtime_node: the ``nodejs`` runtime (Node.js + startup snapshots).

Author quickstart: ``docs/runtime-node.md``. Profiles choose it with
``"runtime": "nodejs"``; the same worker scripts as the ``aworker`` runtime run here.
"""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, RuntimeSpec
from plugins.runtime_node.config import RuntimeNodeConfig

SECTION = "runtime_node"
_config = RuntimeNodeConfig()


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=RuntimeNodeConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    global _config
    getter = getattr(config, "plugin_section", None)
    section = getter(SECTION) if getter is not None else None
    _config = section if isinstance(section, RuntimeNodeConfig) else RuntimeNodeConfig()


@hookimpl
def noslate_runtimes() -> list[RuntimeSpec]:
    from plugins.runtime_node.runtime import NAME, NodeRuntime

    return [
        RuntimeSpec(
            name=NAME,
            factory=lambda kernel: NodeRuntime(kernel, _config),
            description="Node.js worker processes started from per-function V8 startup snapshots",
        )
    ]


@hookimpl
def noslate_capability_report() -> dict[str, Any]:
    from plugins.runtime_node.node import find_node, node_version
    from plugins.runtime_node.snapshot import HOST_BUNDLE

    try:
        node = find_node(_config.node)
        version = node_version(node)
    except Exception as exc:  # report, never fail start-up
        return {"runtime_node": {"node": None, "error": str(exc)}}
    return {
        "runtime_node": {
            "node": node,
            "version": version,
            "snapshot": _config.snapshot,
            "host_bundle": HOST_BUNDLE.exists(),
        }
    }
