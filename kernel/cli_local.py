"""CLI commands that need no daemon: plugins, config validation, profiles, serve."""

from __future__ import annotations

import json
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from kernel.cli_client import CLIError
from kernel.errors import ConfigError, NoslateError, PluginError

EXIT_USAGE = 2


def version() -> str:
    try:
        return metadata.version("noslate-workers")
    except metadata.PackageNotFoundError:
        return "unknown"


def load_config(path: str | None) -> Any:
    """The validated config (embedded default when ``path`` is None); CLIError exit 2."""
    from kernel.config import load_config as load

    try:
        return load(path)
    except ConfigError as exc:
        raise CLIError(
            f"invalid configuration in {path or 'the embedded default'}", EXIT_USAGE, exc.errors
        ) from exc
    except PluginError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from exc


def validate_config(path: str) -> list[str]:
    """Every problem of config file ``path`` as ``message @ $.path`` lines ([] = valid)."""
    from kernel.config import load_config_and_plugins

    if not Path(path).is_file():
        return [f"no such file: {path} @ $"]

    try:
        config, pm = load_config_and_plugins(path)
    except ConfigError as exc:
        return list(exc.errors)
    except PluginError as exc:
        return [f"{exc} @ $.plugins"]
    # What `noslate serve` would refuse at start-up: a scheduler or KV backend name
    # that none of the enabled plugins providing one knows (a typo).
    errors = []
    for name, specs, where in (
        (config.scheduling.scheduler, pm.hooks.schedulers(), "$.scheduling.scheduler"),
        (config.kv.backend, pm.hooks.kv_backends(), "$.kv.backend"),
    ):
        if specs and name not in specs:
            errors.append(f"{name!r} is not recognized; choose one of: {', '.join(sorted(specs))} @ {where}")
    return errors


def default_config_text() -> str:
    from kernel.config import default_text

    return default_text()


def list_plugins(config_path: str | None) -> list[dict[str, Any]]:
    """Installed plugins with version, enabled flag and hooks, under the config's choices."""
    from kernel.config import parse_toml
    from kernel.plugins import list_plugins as listing

    class _Cfg:
        plugins: Any = None
        raw_plugin_sections: dict[str, Any] = {}

    cfg = _Cfg()
    if config_path:
        # Only [plugins] matters here: read it leniently so a listing works even when
        # another section is broken (``noslate config validate`` reports those).
        try:
            data = parse_toml(Path(config_path).read_text())
        except OSError as exc:
            raise CLIError(f"cannot read config file {config_path}: {exc.strerror}", EXIT_USAGE) from exc
        except ConfigError as exc:
            raise CLIError(f"invalid configuration in {config_path}", EXIT_USAGE, exc.errors) from exc
        raw = data.get("plugins") or {}
        from kernel.config import PluginsConfig

        cfg.plugins = PluginsConfig(
            enabled=list(raw.get("enabled") or []), disabled=list(raw.get("disabled") or [])
        )
        cfg.raw_plugin_sections = {k: v for k, v in raw.items() if isinstance(v, dict)}
    try:
        return [info.to_json() for info in listing(cfg)]
    except PluginError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from exc


def read_profile(path: str) -> dict[str, Any]:
    """A profile file (.json or .toml) as plain data; CLIError exit 2 when unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read profile {path}: {exc}", EXIT_USAGE) from exc
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if p.suffix == ".toml" else "JSON"
        raise CLIError(f"profile {path} is not valid {kind}: {exc}", EXIT_USAGE) from exc
    if not isinstance(data, dict):
        raise CLIError(f"profile {path} must hold an object, not {type(data).__name__}", EXIT_USAGE)
    return data


def leaf(exc: BaseException) -> BaseException:
    """The single real error inside (nested) exception groups trio raises."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def serve(config: str | None, data_bind: str | None, control_bind: str | None, state_dir: str | None) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT; its exit code."""
    from kernel import daemon

    try:
        status = daemon.serve(
            config=config, data_bind=data_bind, control_bind=control_bind, state_dir=state_dir
        )
    except BaseException as group:
        exc = leaf(group)
        if isinstance(exc, ConfigError):
            where = config or "the embedded default"
            raise CLIError(f"invalid configuration in {where}", EXIT_USAGE, exc.errors) from group
        if isinstance(exc, PluginError):
            raise CLIError(str(exc), EXIT_USAGE) from group
        if isinstance(exc, NoslateError):
            raise CLIError(str(exc), getattr(exc, "exit_code", 1)) from group
        raise
    return int(status or 0)


def migrate_registry(config: str | None) -> tuple[int, str]:
    """``noslate db migrate``: create or migrate the shared registry's schema."""
    import trio

    from kernel.config import load_config_and_plugins

    cfg, pm = load_config_and_plugins(config)
    name = cfg.registry.backend
    if name == "sqlite":
        raise CLIError('[registry] backend is "sqlite" (the embedded default): nothing to migrate', 2)
    specs = pm.hooks.registry_backends()
    if name not in specs:
        raise CLIError(f"[registry] backend {name!r} is not registered by any enabled plugin", 2)

    class _Config:  # what a registry backend reads of the kernel
        config = cfg

    backend = specs[name].factory(_Config())
    try:
        version = trio.run(backend.migrate)
    except NoslateError as exc:
        raise CLIError(str(exc), getattr(exc, "exit_code", 1)) from exc
    except Exception as exc:
        raise CLIError(f"{type(exc).__name__}: {exc}", 1) from exc
    return int(version), str(backend.store.where)
