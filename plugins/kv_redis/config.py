"""``[plugins.kv_redis]``: the server, deadlines, and kv_lru's limits."""

from __future__ import annotations

import os

from attrs import field, frozen, validators

from plugins.kv_lru.config import KVLRUConfig

_pos = validators.gt(0)


@frozen(kw_only=True)
class KVRedisConfig(KVLRUConfig):
    """kv_lru's limits (the same keys, the same defaults) plus where Redis is."""

    url: str = ""
    """``redis://[:password@]host:port/db`` (Redis >= 7, Valkey >= 8); ``NOSLATE_KV_REDIS_URL``
    overrides. Never logged (errors name the host and port)."""
    timeout: float = field(default=1.0, validator=_pos)
    """Seconds one KV call may take (connect included); then ``KVError: storage unavailable``."""
    pool_size: int = field(default=16, validator=_pos)
    """Connections to Redis per daemon (and KV calls in flight at once)."""
    prefix: str = "noslate:kv"
    """Prefix of every Redis key this plugin writes."""
    cluster_rate_limit: bool = False
    """Enforce each function's ``rateLimit`` across every daemon on this Redis (one token
    bucket per function, in Redis) besides the per-daemon one; off: per daemon only."""
    rate_limit_timeout: float = field(default=0.05, validator=_pos)
    """Seconds the cluster rate limit may take per request; then it admits (fails open)."""

    def resolved_url(self) -> str:
        return os.environ.get("NOSLATE_KV_REDIS_URL") or self.url
