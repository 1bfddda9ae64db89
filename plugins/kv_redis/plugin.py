"""Hook implementations of kv_redis."""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, InboundRequest, KVBackendSpec, Rejection, Service

from .config import KVRedisConfig

_state: dict[str, Any] = {}


@hookimpl
def noslate_config_section() -> ConfigSection:
    """``[plugins.kv_redis]``: where Redis is, deadlines, and kv_lru's limits."""
    return ConfigSection("kv_redis", KVRedisConfig)


def _create(kernel: Any) -> Any:
    from .backend import create  # redis only when used

    return create(kernel)


@hookimpl
def noslate_configure(config: Any) -> None:
    """Set up the cluster-wide rate limit when ``cluster_rate_limit`` is on."""
    section = config.plugin_section("kv_redis")
    _state.pop("limit", None)
    if isinstance(section, KVRedisConfig) and section.cluster_rate_limit and section.resolved_url():
        from .ratelimit import ClusterRateLimit

        _state["limit"] = ClusterRateLimit(section.resolved_url(), section.prefix, section.rate_limit_timeout)


@hookimpl
def noslate_admit(request: InboundRequest, function: Any) -> Rejection | None:
    """The cluster-wide token bucket of ``function`` (when ``cluster_rate_limit`` is on)."""
    limit = _state.get("limit")
    return limit.admit(function) if limit is not None else None


@hookimpl
def noslate_kv_backends() -> list[KVBackendSpec]:
    """Register the Redis/Valkey backend as ``redis``."""
    return [KVBackendSpec("redis", _create)]


@hookimpl
def noslate_services(kernel: Any) -> list[Service] | None:
    """Purge expired cache entries (the caches stay in the daemon) when ``redis`` is active."""
    backend = getattr(kernel, "kv", None)
    if type(backend).__name__ == "RedisBackend":
        return [Service("kv_redis.cache_sweeper", backend.run_sweeper)]
    return None
