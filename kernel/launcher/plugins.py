"""Which plugins the launcher loads: only those it needs (a lean zygote).

Every module the launcher imports is in every seed's address space: its pages are
copied into each forked instance as soon as Python touches an object on them, and
``fork()`` itself copies the page tables of all of it. The daemon's full plugin set
(trio, httpx, hypercorn's friends, ...) made the seed's ``fork()`` ~2x slower and
each instance ~0.3 MB larger. The launcher needs only the plugins that implement a
launcher hook (isolation layers, preload); this module finds them by reading their
entry modules' source (no import) and builds the config with only those enabled.
The daemon still checks that both sides have the same layer names.
"""

from __future__ import annotations

import ast
import importlib.util
from types import SimpleNamespace
from typing import Any

LAUNCHER_HOOKS = frozenset({"noslate_isolation_layers", "noslate_launcher_preload", "noslate_configure"})
"""Hooks that matter inside the launcher (configure only together with one of the others)."""
NEEDED = frozenset({"noslate_isolation_layers", "noslate_launcher_preload"})


def module_hooks(module: str) -> frozenset[str] | None:
    """Names of launcher hooks ``module`` defines or imports at top level; None if unknown."""
    try:
        spec = importlib.util.find_spec(module)
        loader = spec.loader if spec is not None else None
        source = loader.get_source(module) if loader is not None else None  # type: ignore[attr-defined]
    except (ImportError, AttributeError, ValueError):
        return None
    if source is None:
        return None
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names & LAUNCHER_HOOKS)


def needed_plugins(data: dict[str, Any]) -> list[str]:
    """Enabled plugins (per ``data``'s ``[plugins]``) that implement a launcher hook."""
    from kernel.plugins import discover, is_enabled

    raw = data.get("plugins") or {}
    cfg = SimpleNamespace(enabled=raw.get("enabled") or [], disabled=raw.get("disabled") or [])
    sections = {k: v for k, v in raw.items() if k not in ("enabled", "disabled")}
    out = []
    for name, ep, _dist, _version in discover():
        if not is_enabled(name, cfg, sections):
            continue
        hooks = module_hooks(ep.value.partition(":")[0])
        if hooks is None or hooks & NEEDED:  # unknown: load it, to be safe
            out.append(name)
    return out


def lean_config_data(data: dict[str, Any]) -> dict[str, Any] | None:
    """``data`` with only the launcher's plugins enabled; None when it needs none."""
    names = needed_plugins(data)
    if not names:
        return None
    raw = data.get("plugins") or {}
    lean = dict(data)
    lean["plugins"] = {"enabled": names, **{k: v for k, v in raw.items() if k in names}}
    return lean
