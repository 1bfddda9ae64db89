"""``LRUBackend``: the :class:`~kernel.interfaces.KVBackend` the kernel calls."""

from __future__ import annotations

import base64
import inspect as pyinspect
import time
from collections.abc import Callable
from typing import Any

import trio

from kernel.interfaces import KVError

from . import cache, kv
from .config import KVLRUConfig
from .lru import Clock, Space, Table

NAME = "lru"

_OPS: dict[str, tuple[str, Callable[..., Any]]] = {
    **{op: ("kv", fn) for op, fn in kv.OPS.items()},
    **{op: ("cache", fn) for op, fn in cache.OPS.items()},
}


def _arity(fn: Callable[..., Any]) -> tuple[int, int]:
    params = list(pyinspect.signature(fn).parameters.values())[2:]  # after space, cfg
    required = sum(1 for p in params if p.default is pyinspect.Parameter.empty)
    return required, len(params)


_ARITY = {op: _arity(fn) for op, (_, fn) in _OPS.items()}


def checked_op(op: str, args: Any, backend: str = "kv_lru") -> tuple[str, Callable[..., Any]]:
    """``op``'s kind and implementation, after checking the op exists and ``args`` is a
    list of as many arguments as it takes (TypeErrors naming what is wrong)."""
    try:
        kind, fn = _OPS[op]
    except KeyError:
        raise KVError(
            "TypeError", f"unknown host call {op!r}; the {backend} backend serves: {', '.join(_OPS)}"
        ) from None
    if not isinstance(args, list | tuple):
        raise KVError("TypeError", f"{op}: arguments must be a list")
    lo, hi = _ARITY[op]
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise KVError("TypeError", f"{op} takes {want} arguments, got {len(args)}")
    return kind, fn


class LRUBackend:
    """In-daemon KV stores and caches per namespace, each kind with its own byte quota."""

    name = NAME

    def __init__(self, config: KVLRUConfig | None = None, clock: Clock = time.monotonic) -> None:
        self.config = config or KVLRUConfig()
        self.clock = clock
        self._spaces: dict[str, dict[str, Space]] = {"kv": {}, "cache": {}}

    # ---- the KVBackend protocol ------------------------------------------------------

    async def call(self, namespace: str, op: str, args: list[Any]) -> Any:
        """Perform ``op`` with ``args`` in ``namespace``; user errors raise KVError."""
        return self.call_sync(namespace, op, args)

    def call_sync(self, namespace: str, op: str, args: list[Any]) -> Any:
        """:meth:`call` without the coroutine (nothing in it ever waits)."""
        kind, fn = checked_op(op, args)
        return fn(self.space(kind, namespace), self.config, *args)

    def inspect(self, namespace: str | None = None, values: bool = False) -> dict[str, Any]:
        """Namespaces with their stores and caches: sizes, entries, hits and misses.

        :param namespace: only this namespace (an unknown one gives an empty mapping).
        :param values: include every live key with its value (text when it is UTF-8,
            else base64) and remaining TTL. Only for explicitly authenticated requests.
        """
        names = sorted(set(self._spaces["kv"]) | set(self._spaces["cache"]))
        if namespace is not None:
            names = [n for n in names if n == namespace]
        cfg = self.config
        return {
            "backend": NAME,
            "limits": {
                "max_stores": cfg.max_stores,
                "max_entries": cfg.max_entries,
                "max_key_bytes": cfg.max_key_bytes,
                "quota_bytes": cfg.quota_bytes,
                "max_value_bytes": cfg.max_value_bytes,
                "cache_quota_bytes": cfg.cache_quota_bytes,
                "max_caches": cfg.max_caches,
                "max_cache_entries": cfg.max_cache_entries,
            },
            "namespaces": {
                n: {
                    "kv": self._space_view(self._spaces["kv"].get(n), "stores", values),
                    "cache": self._space_view(self._spaces["cache"].get(n), "caches", values),
                }
                for n in names
            },
        }

    # ---- the rest --------------------------------------------------------------------

    def space(self, kind: str, namespace: str) -> Space:
        """The ``kind`` ("kv" or "cache") space of ``namespace``, created on first use."""
        spaces = self._spaces[kind]
        space = spaces.get(namespace)
        if space is None:
            quota = self.config.quota_bytes if kind == "kv" else self.config.cache_quota_bytes
            space = spaces[namespace] = Space(namespace, kind, quota, self.clock)
        return space

    def purge(self) -> int:
        """Drop every expired entry of every namespace; return how many."""
        return sum(s.purge() for spaces in self._spaces.values() for s in spaces.values())

    def clear(self, namespace: str) -> bool:
        """Forget ``namespace``'s stores and caches; True if it had any."""
        found = False
        for spaces in self._spaces.values():
            found = spaces.pop(namespace, None) is not None or found
        return found

    async def run_sweeper(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Purge expired entries periodically so idle namespaces release their bytes."""
        task_status.started()
        while True:
            await trio.sleep(self.config.sweep_interval_s)
            self.purge()

    def _space_view(self, space: Space | None, label: str, values: bool) -> dict[str, Any]:
        if space is None:
            return {"bytes": 0, "quota_bytes": None, "entries": 0, label: {}}
        space.purge()
        return {
            "bytes": space.bytes,
            "quota_bytes": space.quota,
            "entries": space.entry_count(),
            label: {name: self._table_view(t, values) for name, t in space.tables.items()},
        }

    def _table_view(self, table: Table, values: bool) -> dict[str, Any]:
        st = table.stats
        view: dict[str, Any] = {
            "entries": len(table),
            "bytes": table.bytes,
            "hits": st.hits,
            "misses": st.misses,
            "evictions": st.evictions,
            "expirations": st.expirations,
        }
        if values:
            now = self.clock()
            view["values"] = {
                key: {
                    "size": e.size,
                    "ttl_ms": None if e.expires_at is None else round((e.expires_at - now) * 1000),
                    **_value_view(e.value),
                }
                for key, e in table.items()
            }
        return view


def _bytes_view(data: bytes) -> dict[str, str]:
    try:
        return {"encoding": "utf-8", "value": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "value": base64.b64encode(data).decode("ascii")}


def _value_view(value: Any) -> dict[str, Any]:
    if isinstance(value, cache.Cached):
        return {"status": value.status, "headers": value.headers, "body": _bytes_view(value.body)}
    return _bytes_view(value)


def create(kernel: Any) -> LRUBackend:
    """``KVBackendSpec`` factory: an LRUBackend with the kernel's ``[plugins.kv_lru]``."""
    section = None
    config = getattr(kernel, "config", None)
    if config is not None and hasattr(config, "plugin_section"):
        section = config.plugin_section("kv_lru")
    return LRUBackend(section if isinstance(section, KVLRUConfig) else None)
