"""Hook implementations of the kv_lru plugin."""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, KVBackendSpec, Service

from .backend import NAME, LRUBackend, create
from .config import KVLRUConfig


@hookimpl
def noslate_config_section() -> ConfigSection:
    """``[plugins.kv_lru]``: the store and cache limits."""
    return ConfigSection("kv_lru", KVLRUConfig)


@hookimpl
def noslate_kv_backends() -> list[KVBackendSpec]:
    """Register the in-daemon LRU backend as ``lru``."""
    return [KVBackendSpec(NAME, create)]


@hookimpl
def noslate_services(kernel: Any) -> list[Service] | None:
    """Purge expired entries of idle namespaces in the background (when ``lru`` is active)."""
    backend = getattr(kernel, "kv", None)
    if isinstance(backend, LRUBackend):
        return [Service("kv_lru.sweeper", backend.run_sweeper)]
    return None
