"""The daemon's TOML configuration, structured into frozen attrs classes.

Every problem is reported at once as ``message @ $.path`` (:class:`ConfigError`).
Plugins own ``[plugins.<name>]`` sections, structured by the class each declares
through ``noslate_config_section``. With no file, ``default_config.toml`` is used.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from kernel.errors import ConfigError, PluginError, ValidationError
from kernel.structure import structure

SECTIONS = ("server", "control", "logging", "scheduling", "kv", "registry", "deploy", "limits")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _bind(_i: Any, a: attrs.Attribute, value: str) -> None:
    if value.startswith("unix:"):
        if len(value) <= 5:
            raise ValueError(f"{a.name} 'unix:' needs a socket path, e.g. unix:/run/noslate.sock")
        return
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{a.name} must be HOST:PORT (port 0 picks a free one) or unix:PATH; got {value!r}")


def _positive(_i: Any, a: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{a.name} must be > 0; got {value}")


def _non_negative(_i: Any, a: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"{a.name} must be >= 0; got {value}")


def _level(_i: Any, a: attrs.Attribute, value: str) -> None:
    if value not in LOG_LEVELS:
        raise ValueError(f"{a.name} must be one of {', '.join(LOG_LEVELS)}; got {value!r}")


@frozen
class ServerConfig:
    """``[server]``: listeners, state and request limits."""

    data_bind: str = field(default="127.0.0.1:8080", validator=_bind)
    """Data plane address (``HOST:PORT``); the Host header's first label names the function."""
    control_bind: str = field(default="127.0.0.1:8081", validator=_bind)
    """Control API address (``HOST:PORT`` or ``unix:PATH``)."""
    state_dir: str = "/var/lib/noslate"
    """Where the function registry (SQLite) and ``daemon.json`` live."""
    grace_period: float = field(default=30.0, validator=_positive)
    """Seconds SIGTERM waits for in-flight requests before stopping workers."""
    max_code_size: int = field(default=10 * 1024 * 1024, validator=_positive)
    """Largest accepted function code, in bytes."""
    max_request_body: int = field(default=100 * 1024 * 1024, validator=_positive)
    """Largest inbound request body, in bytes (413 beyond)."""
    request_queue_timeout: float = field(default=10.0, validator=_positive)
    """Seconds a request may wait for an instance (schedulers read it)."""
    response_timeout: float = field(default=60.0, validator=_non_negative)
    """Seconds a worker may take to start its response (status and headers) once it
    has the request; then the client gets 504 and the worker is told to drop the
    request. 0 disables the deadline. Streaming bodies: see ``body_idle_timeout``."""
    metrics_bind: str = field(default="", validator=lambda i, a, v: v == "" or _bind(i, a, v))
    """An extra listener (``HOST:PORT``) serving ``/metrics``, ``/healthz`` and ``/readyz``
    without the control token, for scrapers and probes; empty = none."""
    ready_saturation_high: float = field(default=0.9, validator=_positive)
    """``/readyz`` turns 503 ("saturated") once saturation reaches this..."""
    ready_saturation_low: float = field(default=0.75, validator=_positive)
    """...and 200 again once it falls below this."""
    idle_cpu_share: float = field(default=0.1, validator=_positive)
    """Share of one core an instance may use with no request in flight (timers,
    background work), averaged over ``idle_cpu_window``; more and it is killed."""
    idle_cpu_window: float = field(default=10.0, validator=_positive)
    """Seconds over which ``idle_cpu_share`` is measured."""
    body_read_timeout: float = field(default=30.0, validator=_non_negative)
    """Seconds a request body may go without a byte from the client; then 408 (if no
    response has started) and the instance's slot is freed. 0 disables the deadline."""
    body_idle_timeout: float = field(default=60.0, validator=_non_negative)
    """Seconds a streaming response may go without sending a chunk; then the client
    connection is aborted (never ended as complete) and the worker is told to drop
    the request. 0 disables the deadline."""


@frozen
class ControlConfig:
    """``[control]``: the control API."""

    token: str = ""
    """Bearer token; ``NOSLATE_CONTROL_TOKEN`` overrides. Required for non-loopback binds."""


@frozen
class LoggingConfig:
    """``[logging]``: the daemon's own log."""

    json: bool = False
    """Write JSON lines instead of text."""
    level: str = field(default="info", validator=_level)
    function_log_lines: int = field(default=1000, validator=_positive)
    """Recent lines kept per function for ``noslate logs``."""
    function_log_rate: int = field(default=500, validator=_non_negative)
    """Lines per second a function may log (bursts of twice that); more are dropped
    and counted. 0 disables the limit."""


@frozen
class SchedulingConfig:
    """``[scheduling]``: which scheduler plugin runs."""

    scheduler: str = "reactive"


@frozen
class KVConfig:
    """``[kv]``: which KV backend plugin serves ``kv.*`` / ``cache.*``."""

    backend: str = "lru"


@frozen
class RegistryConfig:
    """``[registry]``: where functions are stored (shared by many daemons, or not)."""

    backend: str = "sqlite"
    """``"sqlite"`` (the embedded default: this daemon alone) or a shared backend a
    plugin registers, e.g. ``"postgres"`` (plugin registry_postgres)."""
    dsn: str = ""
    """The shared backend's connection string; ``NOSLATE_REGISTRY_DSN`` overrides. Never
    logged (errors name the host, port and database only)."""
    resync_interval: float = field(default=10.0, validator=_positive)
    """Seconds between full comparisons with the shared registry (heals a missed
    notification)."""
    connect_timeout: float = field(default=5.0, validator=_positive)
    """Seconds to connect to the shared registry; also its statement timeout."""

    def resolved_dsn(self) -> str:
        return os.environ.get("NOSLATE_REGISTRY_DSN") or self.dsn


@frozen
class DeployConfig:
    """``[deploy]``: limits of deploy-time work (esbuild, snapshot builds), run sandboxed."""

    build_memory: int = field(default=1024 * 1024 * 1024, validator=_positive)
    """Bytes of memory one esbuild run may use (its own cgroup)."""
    build_timeout: float = field(default=60.0, validator=_positive)
    """Seconds (wall clock, and of CPU) one deploy-time job may take."""
    build_max_output: int = field(default=64 * 1024 * 1024, validator=_positive)
    """Bytes a deploy-time job may print (the prepared code, its errors)."""
    build_pids: int = field(default=128, validator=_positive)
    """Processes and threads one deploy-time job may have."""


@frozen
class LimitsConfig:
    """``[limits]``: the largest value any function profile may ask for (422 beyond)."""

    memory: int = field(default=4 * 1024 * 1024 * 1024, validator=_positive)
    """``resourceLimit.memory``, bytes."""
    cpu: float = field(default=1.0, validator=_positive)
    """``resourceLimit.cpu``, cores."""
    pids: int = field(default=1024, validator=_positive)
    """``resourceLimit.pids``."""
    replicas: int = field(default=100, validator=_positive)
    """``worker.replicaCountLimit``."""
    reservations: int = field(default=10, validator=_non_negative)
    """``worker.reservationCount``."""
    concurrency: int = field(default=1000, validator=_positive)
    """``worker.maxActivateRequests``."""
    cpu_time_limit_ms: int = field(default=60_000, validator=_positive)
    """``worker.cpuTimeLimitMs``."""
    initialization_timeout_ms: int = field(default=60_000, validator=_positive)
    """``worker.initializationTimeout``."""


@frozen
class PluginsConfig:
    """``[plugins]``: which plugins run (sub-tables are the plugins' own sections)."""

    enabled: list[str] = field(factory=list)
    """When non-empty, only these plugins run."""
    disabled: list[str] = field(factory=list)


@frozen
class Config:
    """The validated configuration."""

    server: ServerConfig = field(factory=ServerConfig)
    control: ControlConfig = field(factory=ControlConfig)
    logging: LoggingConfig = field(factory=LoggingConfig)
    scheduling: SchedulingConfig = field(factory=SchedulingConfig)
    kv: KVConfig = field(factory=KVConfig)
    registry: RegistryConfig = field(factory=RegistryConfig)
    deploy: DeployConfig = field(factory=DeployConfig)
    limits: LimitsConfig = field(factory=LimitsConfig)
    plugins: PluginsConfig = field(factory=PluginsConfig)
    plugin_sections: dict[str, Any] = field(factory=dict)
    """Structured ``[plugins.<name>]`` sections of enabled plugins."""
    raw_plugin_sections: dict[str, Any] = field(factory=dict)
    source: str = "<embedded default>"

    def plugin_section(self, name: str) -> Any:
        """The structured section of plugin ``name`` (defaults when absent), or None."""
        return self.plugin_sections.get(name)

    @property
    def state_path(self) -> Path:
        return Path(self.server.state_dir)

    def control_token(self) -> str:
        return os.environ.get("NOSLATE_CONTROL_TOKEN") or self.control.token

    def with_server(self, **changes: Any) -> Config:
        """A copy with ``[server]`` keys replaced (CLI flags); None values are ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        try:
            return attrs.evolve(self, server=attrs.evolve(self.server, **changes))
        except ValueError as exc:
            raise ConfigError([f"{exc} @ $.server"]) from exc


def default_text() -> str:
    return Path(__file__).with_name("default_config.toml").read_text()


def parse_toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"TOML syntax error: {exc} @ $"]) from exc


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and structure the config (the embedded default when ``path`` is None)."""
    return load_config_and_plugins(path)[0]


def load_config_and_plugins(
    path: str | os.PathLike[str] | None = None, data: dict[str, Any] | None = None, extra=()
) -> tuple[Config, Any]:
    """Like :func:`load_config`, also returning the loaded :class:`PluginManager`."""
    if data is None:
        if path is None:
            text, source = default_text(), "<embedded default>"
        else:
            try:
                text, source = Path(path).read_text(), str(path)
            except OSError as exc:
                raise ConfigError([f"cannot read config file: {exc.strerror} ({path}) @ $"]) from exc
        data = parse_toml(text)
    else:
        source = "<data>"
    return build_config(data, source, extra)


def build_config(data: dict[str, Any], source: str = "<data>", extra=()) -> tuple[Config, Any]:
    """Validate plain ``data``; load enabled plugins to validate their sections."""
    from kernel.plugins import PluginManager, discover

    data = dict(data)
    errors: list[str] = []
    raw_plugins = data.pop("plugins", {}) or {}
    if not isinstance(raw_plugins, dict):
        errors.append(f"expected a table, got {type(raw_plugins).__name__} @ $.plugins")
        raw_plugins = {}
    base_plugins = {k: v for k, v in raw_plugins.items() if k in ("enabled", "disabled")}
    sections = {k: v for k, v in raw_plugins.items() if k not in ("enabled", "disabled")}
    internal = sorted(k for k in data if k in ("plugin_sections", "raw_plugin_sections", "source"))
    if internal:
        errors.append(f"unknown field(s): {', '.join(internal)} @ $")
        data = {k: v for k, v in data.items() if k not in internal}
    for key in [k for k, v in data.items() if k in SECTIONS and not isinstance(v, dict)]:
        errors.append(f"expected a table, got {type(data[key]).__name__} @ $.{key}")
        del data[key]
    try:
        config = structure(data, Config, "configuration")
    except ValidationError as exc:
        errors.extend(exc.errors)
        config = Config()
    try:
        plugins_cfg = structure(base_plugins, PluginsConfig, "configuration")
    except ValidationError as exc:
        errors.extend(line.replace("@ $", "@ $.plugins", 1) for line in exc.errors)
        plugins_cfg = PluginsConfig()
    pm = PluginManager()
    try:
        pm.load(plugins_cfg, sections, extra=extra)
    except PluginError as exc:
        if errors:
            raise ConfigError([*errors, f"{exc} @ $.plugins"]) from exc
        raise
    installed = {name for name, *_ in discover()} | set(pm.infos)
    classes = pm.hooks.config_sections()
    structured: dict[str, Any] = {}
    for name, raw in sections.items():
        where = f"$.plugins.{name}"
        if not isinstance(raw, dict):
            errors.append(f"expected a table, got {type(raw).__name__} @ {where}")
            continue
        if name not in installed:
            errors.append(
                f"unknown plugin section; installed plugins: {', '.join(sorted(installed))} @ {where}"
            )
            continue
        enabled_flag = raw.get("enabled", True)
        if not isinstance(enabled_flag, bool):
            errors.append(f"expected bool, got {type(enabled_flag).__name__} @ {where}.enabled")
        if not pm.infos.get(name) or not pm.infos[name].enabled:
            continue
        body = {k: v for k, v in raw.items() if k != "enabled"}
        cls = classes.get(name)
        if cls is None:
            if body:
                errors.append(
                    f"plugin {name} takes no configuration; unknown field(s): "
                    f"{', '.join(sorted(body))} @ {where}"
                )
            continue
        try:
            structured[name] = structure(body, cls, f"[plugins.{name}]")
        except ValidationError as exc:
            errors.extend(line.replace("@ $", f"@ {where}", 1) for line in exc.errors)
    for name, cls in classes.items():
        if name not in structured and name not in sections:
            try:
                structured[name] = structure({}, cls, f"[plugins.{name}]")
            except ValidationError as exc:
                errors.extend(line.replace("@ $", f"@ $.plugins.{name}", 1) for line in exc.errors)
    if errors:
        raise ConfigError(errors)
    config = attrs.evolve(
        config, plugins=plugins_cfg, plugin_sections=structured, raw_plugin_sections=sections, source=source
    )
    return config, pm
