"""The ``[plugins.kv_lru]`` config section."""

from __future__ import annotations

from attrs import field, frozen, validators

from kernel.protocol import MAX_FRAME

MiB = 1024 * 1024

_pos = validators.gt(0)


@frozen(kw_only=True)
class KVLRUConfig:
    """Limits of the in-daemon LRU KV store and Cache API (defaults as Noslate's)."""

    max_stores: int = field(default=8, validator=_pos)
    """KV stores one namespace may open (``kvStorages.open`` beyond it: QuotaExceededError)."""
    max_entries: int = field(default=4096, validator=_pos)
    """Entries per KV store; a new key in a full store evicts the store's LRU entry."""
    max_key_bytes: int = field(default=512, validator=_pos)
    """Longest key in UTF-8 bytes (longer: TypeError)."""
    quota_bytes: int = field(default=256 * MiB, validator=_pos)
    """KV bytes per namespace (key bytes + value bytes); LRU entries are evicted to fit."""
    max_value_bytes: int = field(default=MAX_FRAME - 16 * 1024, validator=_pos)
    """Largest single value (it must fit one protocol frame): QuotaExceededError above."""
    cache_quota_bytes: int = field(default=64 * MiB, validator=_pos)
    """Cache API bytes per namespace (URL + headers + body), separate from the KV quota."""
    max_caches: int = field(default=16, validator=_pos)
    """Named caches (``caches.open``) per namespace, not counting ``caches.default``."""
    max_cache_entries: int = field(default=4096, validator=_pos)
    """Entries per cache; a new URL in a full cache evicts the cache's LRU entry."""
    sweep_interval_s: float = field(default=1.0, validator=_pos)
    """How often expired entries of idle namespaces are purged (their bytes released)."""
