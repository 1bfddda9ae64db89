"""The ``kv.*`` ops: Aworker-compatible named stores in one namespace's :class:`Space`."""

from __future__ import annotations

import math
from typing import Any

from kernel.interfaces import KVError

from .config import KVLRUConfig
from .lru import Space, Table

EVICTION_STRATEGIES = ("lru",)


def type_error(message: str) -> KVError:
    """A KVError the worker throws as a JS TypeError."""
    return KVError("TypeError", message)


def check_name(what: str, name: Any, max_bytes: int) -> str:
    """Validate a store/cache name or a key: a string of at most ``max_bytes`` UTF-8 bytes."""
    if not isinstance(name, str):
        raise type_error(f"{what} must be a string, got {type(name).__name__}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise type_error(f"{what} is not valid Unicode (lone surrogate at {exc.start})") from exc
    if size > max_bytes:
        raise type_error(f"{what} is {size} UTF-8 bytes long; the limit is {max_bytes} bytes")
    return name


def _store(space: Space, name: Any, cfg: KVLRUConfig) -> Table:
    check_name("store name", name, cfg.max_key_bytes)
    table = space.tables.get(name)
    if table is None:
        raise not_open(name, space.name)
    return table


def not_open(store: str, namespace: str) -> KVError:
    return KVError(
        "InvalidStateError",
        f"KV store {store!r} is not open in namespace {namespace!r}; "
        f"call noslate.kvStorages.open({store!r}) first",
    )


def too_many_stores(namespace: str, names: list[str], limit: int) -> KVError:
    return KVError(
        "QuotaExceededError",
        f"namespace {namespace!r} already has {len(names)} KV stores "
        f"({', '.join(sorted(names))}); the limit is {limit}",
    )


def check_open_options(options: Any) -> None:
    """``kvStorages.open`` options: an object whose ``evictionStrategy`` is supported."""
    options = options or {}
    if not isinstance(options, dict):
        raise type_error("kvStorages.open options must be an object")
    strategy = options.get("evictionStrategy", "lru")
    if strategy not in EVICTION_STRATEGIES:
        raise type_error(
            f"options.evictionStrategy {strategy!r} is not supported; use one of: "
            + ", ".join(repr(s) for s in EVICTION_STRATEGIES)
        )


def set_arguments(cfg: KVLRUConfig, key: Any, value: Any, ttl_ms: Any) -> tuple[str, bytes, float | None]:
    """``kv.set``'s key, value (bytes) and TTL (seconds or None), checked."""
    check_name("key", key, cfg.max_key_bytes)
    if isinstance(value, bytearray | memoryview):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise type_error(f"value must be bytes, got {type(value).__name__}")
    ttl_s = _ttl_seconds(ttl_ms)
    if len(value) > cfg.max_value_bytes:
        raise KVError(
            "QuotaExceededError",
            f"value for key {key!r} is {len(value)} bytes; the largest value is {cfg.max_value_bytes} bytes",
        )
    return key, value, ttl_s


def _ttl_seconds(ttl_ms: Any) -> float | None:
    if ttl_ms is None:
        return None
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int | float):
        raise type_error(f"ttlMs must be a number, got {type(ttl_ms).__name__}")
    if not math.isfinite(ttl_ms) or ttl_ms <= 0:
        raise type_error(f"ttlMs must be a positive finite number of milliseconds, got {ttl_ms}")
    return ttl_ms / 1000.0


def kv_open(space: Space, cfg: KVLRUConfig, store: Any, options: Any = None) -> None:
    """Open (creating if needed) store ``store`` of the namespace."""
    check_name("store name", store, cfg.max_key_bytes)
    check_open_options(options)
    if store in space.tables:
        return None
    if len(space.tables) >= cfg.max_stores:
        raise too_many_stores(space.name, list(space.tables), cfg.max_stores)
    space.tables[store] = Table(space, store, cfg.max_entries)
    return None


def kv_get(space: Space, cfg: KVLRUConfig, store: Any, key: Any) -> bytes | None:
    """The value of ``key``, or None (expired entries are never returned)."""
    table = _store(space, store, cfg)
    check_name("key", key, cfg.max_key_bytes)
    entry = table.get(key)
    if entry is None:
        table.stats.misses += 1
        return None
    table.stats.hits += 1
    return entry.value


def kv_set(space: Space, cfg: KVLRUConfig, store: Any, key: Any, value: Any, ttl_ms: Any = None) -> None:
    """Set ``key`` to ``value`` (bytes), expiring after ``ttl_ms`` when given."""
    table = _store(space, store, cfg)
    key, value, ttl_s = set_arguments(cfg, key, value, ttl_ms)
    table.put(key, value, len(key.encode("utf-8")) + len(value), ttl_s)


def kv_delete(space: Space, cfg: KVLRUConfig, store: Any, key: Any) -> bool:
    """Delete ``key``; True if it existed."""
    table = _store(space, store, cfg)
    check_name("key", key, cfg.max_key_bytes)
    return table.delete(key)


def kv_list(space: Space, cfg: KVLRUConfig, store: Any) -> list[str]:
    """Every live key of the store, least recently used first."""
    return _store(space, store, cfg).keys()


OPS = {
    "kv.open": kv_open,
    "kv.get": kv_get,
    "kv.set": kv_set,
    "kv.delete": kv_delete,
    "kv.list": kv_list,
}
