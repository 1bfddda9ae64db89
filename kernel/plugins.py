"""The plugin manager (pluggy) and :class:`Hooks`, the one facade that calls hooks.

Plugins are found only through the ``noslate.plugins`` entry-point group. What runs is
decided by the TOML config: ``[plugins] enabled = [...]`` (when non-empty, only these),
``[plugins] disabled = [...]``, and ``enabled = false`` in a plugin's own
``[plugins.<name>]`` section. Disabled plugins are never imported and their names are
blocked in the manager.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pluggy

from kernel import hookspecs
from kernel.errors import PluginError

GROUP = "noslate.plugins"


@attrs.frozen
class PluginInfo:
    """One discovered plugin, as ``noslate plugins`` lists it."""

    name: str
    distribution: str
    version: str
    enabled: bool
    hooks: tuple[str, ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: list(v) if isinstance(v, tuple) else v)


def discover() -> list[tuple[str, md.EntryPoint, str, str]]:
    """Every ``noslate.plugins`` entry point: (name, entry point, distribution, version).

    Raises PluginError when two distributions provide the same plugin name.
    """
    found: dict[str, tuple[str, md.EntryPoint, str, str]] = {}
    seen_dists: set[tuple[str, str]] = set()
    for dist in md.distributions():
        dname = dist.metadata["Name"] or "?"
        key = (dname.lower().replace("_", "-"), str(getattr(dist, "_path", "")))
        if key in seen_dists:
            continue
        seen_dists.add(key)
        for ep in dist.entry_points:
            if ep.group != GROUP:
                continue
            if ep.name in found and found[ep.name][2] != dname:
                raise PluginError(
                    f"plugin name {ep.name!r} is provided by two distributions: "
                    f"{found[ep.name][2]} and {dname}; uninstall one or disable it"
                )
            found[ep.name] = (ep.name, ep, dname, dist.version or "")
    return sorted(found.values(), key=lambda t: t[0])


def is_enabled(name: str, plugins_cfg: Any, raw_sections: Mapping[str, Any] | None = None) -> bool:
    """Whether plugin ``name`` runs under the ``[plugins]`` config."""
    enabled = list(getattr(plugins_cfg, "enabled", []) or [])
    disabled = list(getattr(plugins_cfg, "disabled", []) or [])
    if enabled and name not in enabled:
        return False
    if name in disabled:
        return False
    section = (raw_sections or {}).get(name)
    return not (isinstance(section, Mapping) and section.get("enabled") is False)


class PluginManager:
    """Loads enabled plugins into a pluggy manager and exposes :class:`Hooks`."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.hooks = Hooks(self.pm)

    def load(
        self,
        plugins_cfg: Any = None,
        raw_sections: Mapping[str, Any] | None = None,
        extra: Iterable[tuple[str, Any]] = (),
    ) -> None:
        """Import and register every enabled plugin, then ``check_pending``.

        ``extra`` registers (name, module-or-object) pairs directly (tests).
        """
        for name, ep, dist, version in discover():
            enabled = is_enabled(name, plugins_cfg, raw_sections)
            if not enabled:
                self.pm.set_blocked(name)
                self.infos[name] = PluginInfo(name, dist, version, False)
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {name!r} ({dist} {version}) failed to import: "
                    f"{type(exc).__name__}: {exc}; fix it or disable it with "
                    f"[plugins] disabled = [{name!r}]"
                ) from exc
            self._register(name, module, dist, version)
        for name, module in extra:
            self._register(name, module, "(in-process)", "")
        self._check()
        missing = [n for n in getattr(plugins_cfg, "enabled", []) or [] if n not in self.infos]
        if missing:
            raise PluginError(
                f"[plugins] enabled names unknown plugin(s): {', '.join(missing)}; "
                f"installed: {', '.join(sorted(self.infos)) or 'none'}"
            )

    def _register(self, name: str, module: Any, dist: str, version: str) -> None:
        if self.pm.get_plugin(name) is not None:
            raise PluginError(f"plugin {name!r} is registered twice ({dist})")
        try:
            self.pm.register(module, name=name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} ({dist}): {exc}") from exc
        impls = tuple(sorted(h.name for h in self.pm.get_hookcallers(module) or []))
        self.infos[name] = PluginInfo(name, dist, version, True, impls)

    def _check(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"unknown hook implemented: {exc}") from exc

    def list_plugins(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda i: i.name)


def list_plugins(config: Any = None) -> list[PluginInfo]:
    """Name, version, enabled flag and hooks of every installed plugin (no daemon needed).

    Enabled plugins are imported to learn their hooks; one that fails to import is
    listed with its error instead of stopping the listing.
    """
    plugins_cfg = getattr(config, "plugins", None)
    raw = getattr(config, "raw_plugin_sections", None) or {}
    result = []
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, ep, dist, version in discover():
        if not is_enabled(name, plugins_cfg, raw):
            result.append(PluginInfo(name, dist, version, False))
            continue
        try:
            module = ep.load()
            pm.register(module, name=name)
            impls = tuple(sorted(h.name for h in pm.get_hookcallers(module) or []))
            result.append(PluginInfo(name, dist, version, True, impls))
        except Exception as exc:
            result.append(PluginInfo(name, dist, version, True, (), f"{type(exc).__name__}: {exc}"))
    return result


def _pick(kwargs: dict[str, Any], argnames: tuple[str, ...]) -> list[Any]:
    """Positional arguments for a hook implementation (what pluggy passes)."""
    try:
        return [kwargs[name] for name in argnames]
    except KeyError as exc:
        raise pluggy.HookCallError(f"hook call must provide argument {exc.args[0]!r}") from exc


def _flatten(results: Iterable[list[Any] | None]) -> list[Any]:
    return [item for result in results if result for item in result]


def _by_name(items: list[Any], kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.name in out:
            raise PluginError(f"two plugins register a {kind} named {item.name!r}; disable one of them")
        out[item.name] = item
    return out


class Hooks:
    """Typed calls of every hook. The only code that touches ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._h = pm.hook
        self._direct: dict[str, tuple[list[Any], Any, list[tuple[Any, tuple[str, ...]]] | None]] = {}
        """Per-request hooks: name -> (HookImpls and executor seen, functions in call order)."""
        self._default_exec = pm._inner_hookexec

    def plugin_names(self) -> list[str]:
        return [n for n, _p in self._pm.list_name_plugin()]

    # lifecycle
    def config_sections(self) -> dict[str, type]:
        out: dict[str, type] = {}
        for name, plugin in self._pm.list_name_plugin():
            caller = getattr(plugin, "noslate_config_section", None)
            section = caller() if caller else None
            if section is not None:
                out[section.name or name] = section.cls
        return out

    def configure(self, config: Any) -> None:
        self._h.noslate_configure.call_historic(kwargs={"config": config})

    def startup(self, kernel: Any) -> None:
        self._h.noslate_startup(kernel=kernel)

    def services(self, kernel: Any) -> list[Any]:
        return _flatten(self._h.noslate_services(kernel=kernel))

    def shutdown(self, kernel: Any) -> list[str]:
        """Call every shutdown hook; return error messages instead of raising."""
        errors = []
        for impl in self._h.noslate_shutdown.get_hookimpls():
            try:
                impl.function(kernel=kernel) if "kernel" in impl.argnames else impl.function()
            except Exception as exc:
                errors.append(f"{impl.plugin_name}: {type(exc).__name__}: {exc}")
        return errors

    def capability_reports(self) -> dict[str, Any]:
        out = {}
        for impl in self._h.noslate_capability_report.get_hookimpls():
            report = impl.function()
            if report is not None:
                out[impl.plugin_name] = report
        return out

    # inbound (per request: implementations called directly, same order and semantics)
    def _impls(self, name: str) -> list[tuple[Any, tuple[str, ...]]] | None:
        """``name``'s implementations in pluggy's call order, or None to call through pluggy.

        Re-resolved whenever the registered implementations change; None when a
        wrapper is registered or hook calls are traced (pluggy must run those).
        """
        current = getattr(self._h, name).get_hookimpls()
        hookexec = self._pm._inner_hookexec  # another one when hook-call tracing is on
        cached = self._direct.get(name)
        if cached is not None and cached[0] == current and cached[1] is hookexec:
            return cached[2]
        special = any(i.hookwrapper or i.wrapper or i.kwargnames for i in current)
        impls = None
        if not special and hookexec is self._default_exec:
            impls = [(impl.function, tuple(impl.argnames)) for impl in reversed(current)]
        self._direct[name] = (current, hookexec, impls)
        return impls

    def route(self, request: Any) -> Any:
        """First non-None ``noslate_route`` result (a firstresult hook)."""
        impls = self._impls("noslate_route")
        if impls is None:
            return self._h.noslate_route(request=request)
        for fn, argnames in impls:
            route = fn(request) if argnames == ("request",) else fn(*_pick({"request": request}, argnames))
            if route is not None:
                return route
        return None

    def admit(self, request: Any, function: Any) -> Any:
        """The first rejection of any ``noslate_admit`` implementation, or None."""
        impls = self._impls("noslate_admit")
        if impls is None:
            results = self._h.noslate_admit(request=request, function=function)
        else:
            kwargs = {"request": request, "function": function}
            results = [fn(*_pick(kwargs, argnames)) for fn, argnames in impls]  # all run, as in pluggy
        for rejection in results:
            if rejection is not None:
                return rejection
        return None

    # outbound
    def outbound_check(self, request: Any, function: Any) -> Any:
        for rejection in self._h.noslate_outbound_check(request=request, function=function):
            if rejection is not None:
                return rejection
        return None

    def outbound_performer(self, function: Any) -> Any:
        return self._h.noslate_outbound_performer(function=function)

    # scheduling
    def schedulers(self) -> dict[str, Any]:
        return _by_name(_flatten(self._h.noslate_schedulers()), "scheduler")

    def dispatch_strategies(self) -> dict[str, Any]:
        return _by_name(_flatten(self._h.noslate_dispatch_strategies()), "dispatch strategy")

    def scaling_policies(self) -> dict[str, Any]:
        return _by_name(_flatten(self._h.noslate_scaling_policies()), "scaling policy")

    # isolation
    def sandbox_contribute(self, sandbox: Any, function: Any, role: str) -> None:
        self._h.noslate_sandbox_contribute(sandbox=sandbox, function=function, role=role)

    def isolation_layers(self) -> list[Any]:
        from kernel.sandbox import PHASES

        layers = _flatten(self._h.noslate_isolation_layers())
        for layer in layers:
            if layer.phase not in PHASES:
                raise PluginError(
                    f"isolation layer {layer.name!r} has unknown phase {layer.phase!r}; "
                    f"use one of {', '.join(PHASES)}"
                )
        return sorted(layers, key=lambda layer: PHASES.index(layer.phase))

    # runtime
    def runtimes(self) -> dict[str, Any]:
        return _by_name(_flatten(self._h.noslate_runtimes()), "runtime")

    def launcher_preload(self) -> list[str]:
        return list(dict.fromkeys(_flatten(self._h.noslate_launcher_preload())))

    def instance_starter(self, runtime: Any, function: Any) -> Any:
        return self._h.noslate_instance_starter(runtime=runtime, function=function)

    # kv
    def kv_backends(self) -> dict[str, Any]:
        return _by_name(_flatten(self._h.noslate_kv_backends()), "KV backend")

    def registry_backends(self) -> dict[str, Any]:
        return _by_name(_flatten(self._h.noslate_registry_backends()), "registry backend")
