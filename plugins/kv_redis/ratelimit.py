"""An opt-in cluster-wide ``rateLimit`` (``[plugins.kv_redis] cluster_rate_limit``).

Noslate's token bucket (starts full, gains ``tokensPerFill`` every ``fillInterval``
ms), kept in Redis and taken by a Lua script with the server's clock, so every daemon
draws on one bucket per function. The per-daemon bucket of scaler_reactive still
applies (the stricter one refuses). Admission is a synchronous hook, so the call has
its own short deadline; when Redis does not answer, requests are admitted (the
per-daemon limit still holds) and Redis is left alone for a second.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from kernel.interfaces import Rejection

log = logging.getLogger("noslate.kv_redis")

BUCKET = r"""
local key = KEYS[1]
local capacity, per_fill, interval = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'last', 'shape')
local shape = capacity .. '/' .. per_fill .. '/' .. interval
local tokens, last = tonumber(state[1]), tonumber(state[2])
if not tokens or state[3] ~= shape then tokens, last = capacity, now end
local fills = math.floor((now - last) / interval)
if fills > 0 then
  tokens = math.min(capacity, tokens + fills * per_fill)
  last = last + fills * interval
end
local wait = 0
if tokens > 0 then tokens = tokens - 1 else wait = last + interval - now end
redis.call('HSET', key, 'tokens', tokens, 'last', last, 'shape', shape)
redis.call('PEXPIRE', key, interval * (math.ceil(capacity / per_fill) + 1) + 1000)
return wait
"""


class ClusterRateLimit:
    """One token bucket per function in Redis, shared by every daemon."""

    def __init__(self, url: str, prefix: str, timeout: float = 0.05) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.script = self.client.register_script(BUCKET)
        self.prefix = prefix
        self.skip_until = 0.0
        self.failures = 0

    def admit(self, function: Any) -> Rejection | None:
        limit = function.rate_limit
        if limit is None or time.monotonic() < self.skip_until:
            return None
        key = f"{self.prefix}:rl:{{{function.name}}}"
        try:
            wait_ms = int(
                self.script(
                    keys=[key], args=[limit.max_token_count, limit.tokens_per_fill, limit.fill_interval]
                )
            )
        except (redis.RedisError, OSError) as exc:
            self.failures += 1
            self.skip_until = time.monotonic() + 1.0
            log.warning(
                "cluster rate limit unavailable (%s); per-daemon limits apply for 1 s", type(exc).__name__
            )
            return None
        if wait_ms <= 0:
            return None
        return Rejection(
            429,
            "rate_limited",
            f"function {function.name!r} is over its rateLimit across the cluster "
            f"({limit.tokens_per_fill} per {limit.fill_interval} ms, burst {limit.max_token_count})",
            wait_ms / 1000,
        )
