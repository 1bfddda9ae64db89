"""``RedisBackend``: kv_lru's KV semantics in Redis; the Cache API per host (kv_lru's)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
import trio

from kernel.interfaces import KVError
from plugins.kv_lru import kv as lru_kv
from plugins.kv_lru.backend import LRUBackend, checked_op
from plugins.kv_lru.lru import over_quota
from plugins.kv_redis import resp
from plugins.kv_redis.config import KVRedisConfig
from plugins.kv_redis.lua import SCRIPT

log = logging.getLogger("noslate.kv_redis")
NAME = "redis"
NAME_IN_ERRORS = "kv_redis"


def describe(url: str) -> str:
    """``redis at HOST:PORT`` (no password) for messages."""
    parts = urlsplit(url)
    return f"redis at {parts.hostname or 'localhost'}:{parts.port or 6379}"


class RedisBackend:
    """KV stores in Redis (every daemon pointed at it shares them); caches in the daemon."""

    name = NAME

    def __init__(
        self, config: KVRedisConfig, metrics: Any = None, clock: Callable[[], float] | None = None
    ) -> None:
        url = config.resolved_url()
        if not url:
            from kernel.errors import BadSettingError

            raise BadSettingError(
                '[kv] backend = "redis" needs [plugins.kv_redis] url or NOSLATE_KV_REDIS_URL '
                "(e.g. redis://127.0.0.1:6379/0)"
            )
        self.config = config
        self.clock = clock
        """Seconds (tests' fake clock); None: Redis's own ``TIME``."""
        self.where = describe(url)
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=config.timeout,
            socket_connect_timeout=config.timeout,
            max_connections=config.pool_size,
            health_check_interval=0,
        )
        self.script = self.client.register_script(SCRIPT)
        self.fast = resp.Client(url, config.timeout, config.pool_size)
        self.fast_script = resp.Script(self.fast, SCRIPT)
        """The event loop's path: trio sockets, no thread hop (resp.py)."""
        self.caches = LRUBackend(config)  # the Cache API stays per host
        self.unavailable = 0
        self._counter = None
        if metrics is not None and getattr(metrics, "registry", None) is not None:
            from prometheus_client import Counter

            self._counter = Counter(
                "noslate_kv_unavailable", "KV calls failed because the KV store was unreachable",
                ["backend"], registry=metrics.registry,
            )  # fmt: skip

    # ---- the KVBackend protocol --------------------------------------------------------
    async def call(self, namespace: str, op: str, args: list[Any]) -> Any:
        if op.startswith("cache."):
            return self.caches.call_sync(namespace, op, args)
        argv = self._prepare(namespace, op, args)
        try:
            result = await self.fast_script(keys=[self._prefix(namespace)], args=[*argv, self._now()])
        except resp.RespError as exc:
            raise self._user_error(namespace, argv, str(exc)) from None
        except (trio.TooSlowError, OSError, ConnectionError, ValueError) as exc:
            raise self._unavailable(exc) from None
        return self._result(op, result)

    def call_sync(self, namespace: str, op: str, args: list[Any]) -> Any:
        """:meth:`call` in the calling thread (tests, the model test)."""
        if op.startswith("cache."):
            return self.caches.call_sync(namespace, op, args)
        return self._run(namespace, op, self._prepare(namespace, op, args))

    def purge(self, namespace: str) -> int:
        """Drop ``namespace``'s expired entries now (each operation also does)."""
        return int(self._run(namespace, "purge", ["purge"]) or 0)

    def kv_bytes(self, namespace: str) -> int:
        return int(self.client.get(self._prefix(namespace) + "bytes") or 0)

    def _prepare(self, namespace: str, op: str, args: list[Any]) -> list[Any]:
        """Validate as kv_lru does (its own checks: the same errors); the script's arguments."""
        cfg = self.config
        checked_op(op, args, NAME_IN_ERRORS)
        store = lru_kv.check_name("store name", args[0], cfg.max_key_bytes)
        if op == "kv.open":
            lru_kv.check_open_options(args[1] if len(args) > 1 else None)
            return ["open", store, cfg.max_stores]
        if op == "kv.list":
            return ["list", store]
        if op == "kv.set":
            key, value, ttl_s = lru_kv.set_arguments(
                cfg, args[1], args[2], args[3] if len(args) > 3 else None
            )
            size = len(key.encode("utf-8")) + len(value)
            if size > cfg.quota_bytes:
                raise over_quota("kv", key, size, namespace, cfg.quota_bytes)
            ttl_ms = 0 if ttl_s is None else max(1, round(ttl_s * 1000))
            return ["set", store, key, value, size, ttl_ms, cfg.quota_bytes, cfg.max_entries]
        key = lru_kv.check_name("key", args[1], cfg.max_key_bytes)
        return ["get" if op == "kv.get" else "delete", store, key]

    def _now(self) -> str:
        return "" if self.clock is None else str(round(self.clock() * 1000))

    def _unavailable(self, exc: BaseException) -> KVError:
        self.unavailable += 1
        if self._counter is not None:
            self._counter.labels(NAME).inc()
        log.warning("KV call failed: %s: %s", self.where, type(exc).__name__)
        return KVError("KVError", f"storage unavailable ({self.where}: {type(exc).__name__})")

    def _run(self, namespace: str, op: str, argv: list[Any]) -> Any:
        """One operation with redis-py, blocking (tests and the model test)."""
        try:
            result = self.script(keys=[self._prefix(namespace)], args=[*argv, self._now()])
        except redis.ResponseError as exc:
            raise self._user_error(namespace, argv, str(exc)) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from None
        return self._result(op, result)

    def _result(self, op: str, result: Any) -> Any:
        if op == "kv.get":
            return None if result is None else bytes(result)
        if op == "kv.delete":
            return bool(result)
        if op == "kv.list":
            return [k.decode("utf-8") for k in result]
        if op == "purge":
            return result
        return None

    def _user_error(self, namespace: str, argv: list[Any], text: str) -> KVError:
        store = argv[1]
        if text.startswith("NOTOPEN"):
            return lru_kv.not_open(store, namespace)
        if text.startswith("MAXSTORES"):
            names = [k.decode() for k in self.client.hkeys(self._prefix(namespace) + "stores")]
            return lru_kv.too_many_stores(namespace, names, self.config.max_stores)
        return KVError("Error", f"KV store error: {text}")

    def _prefix(self, namespace: str) -> str:
        return f"{self.config.prefix}:{{{namespace}}}:"

    # ---- operations of the kernel and the control API ------------------------------------
    def clear(self, namespace: str) -> bool:
        """Forget ``namespace``'s stores (in Redis) and caches (here)."""
        found = self.caches.clear(namespace)
        keys = list(self.client.scan_iter(match=self._prefix(namespace) + "*", count=500))
        if keys:
            self.client.delete(*keys)
        return found or bool(keys)

    def inspect(self, namespace: str | None = None, values: bool = False) -> dict[str, Any]:
        caches = self.caches.inspect(namespace, values)
        names = set(caches["namespaces"])
        for key in self.client.scan_iter(match=f"{self.config.prefix}:{{*}}:stores", count=500):
            text = key.decode()
            names.add(text[text.index("{") + 1 : text.rindex("}")])
        if namespace is not None:
            names &= {namespace}
        out: dict[str, Any] = {"backend": NAME, "limits": caches["limits"], "namespaces": {}}
        for name in sorted(names):
            cache_view = caches["namespaces"].get(name, {}).get("cache") or self.caches._space_view(
                None, "caches", values
            )
            out["namespaces"][name] = {"kv": self._kv_view(name, values), "cache": cache_view}
        return out

    def _kv_view(self, namespace: str, values: bool) -> dict[str, Any]:
        p = self._prefix(namespace)
        stores = sorted(k.decode() for k in self.client.hkeys(p + "stores"))
        view: dict[str, Any] = {
            "bytes": int(self.client.get(p + "bytes") or 0),
            "quota_bytes": self.config.quota_bytes,
            "entries": 0,
            "stores": {},
        }
        for store in stores:
            st = {k.decode(): int(v) for k, v in self.client.hgetall(f"{p}s:{store}:st").items()}
            entries = int(self.client.zcard(f"{p}s:{store}:lru"))
            view["entries"] += entries
            table: dict[str, Any] = {
                "entries": entries,
                "bytes": st.get("bytes", 0),
                **{k: st.get(k, 0) for k in ("hits", "misses", "evictions", "expirations")},
            }
            if values:
                vals = self.client.hgetall(f"{p}s:{store}:v")
                sizes = self.client.hgetall(f"{p}s:{store}:size")
                table["values"] = {
                    k.decode(): {"size": int(sizes.get(k, 0)), "ttl_ms": None, **_bytes_view(v)}
                    for k, v in vals.items()
                }
            view["stores"][store] = table
        return view

    async def run_sweeper(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Purge expired cache entries here (KV entries expire inside Redis's script)."""
        await self.caches.run_sweeper(task_status=task_status)

    def close(self) -> None:
        self.client.close()


def _bytes_view(data: bytes) -> dict[str, str]:
    try:
        return {"encoding": "utf-8", "value": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "value": base64.b64encode(data).decode("ascii")}


def create(kernel: Any) -> RedisBackend:
    section = None
    config = getattr(kernel, "config", None)
    if config is not None and hasattr(config, "plugin_section"):
        section = config.plugin_section("kv_redis")
    cfg = section if isinstance(section, KVRedisConfig) else KVRedisConfig()
    return RedisBackend(cfg, getattr(kernel, "metrics", None))
