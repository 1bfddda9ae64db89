"""The ``cache.*`` ops: the Cache API (``caches.default``, ``caches.open(name)``).

Entries are keyed by the request URL without its fragment; one entry per URL (a later
``put`` replaces it, whatever its ``Vary``). Choices, documented in ``docs/kv.md``:

- ``put`` follows the Service Worker spec: any status except 206 is stored (``add`` /
  ``addAll`` in JS reject non-ok responses before calling ``put``); non-GET requests,
  non-http(s) URLs, status 206 and ``Vary: *`` are TypeErrors.
- Like a shared HTTP cache, ``Cache-Control: no-store`` responses are not stored (the
  call succeeds and leaves the cache unchanged) and ``s-maxage`` / ``max-age`` become the
  entry's expiry (``max-age=0``: not stored). Without them an entry lives until evicted.
- ``match`` / ``delete`` / ``keys`` never throw for a URL they cannot hold; they find
  nothing (non-GET without ``ignoreMethod`` finds nothing, as in the spec).
"""

from __future__ import annotations

from typing import Any

import ada_url
from attrs import frozen

from kernel.interfaces import KVError

from .config import KVLRUConfig
from .kv import check_name, type_error
from .lru import Space, Table

DEFAULT = "default"
"""The cache ``caches.default`` names; it always exists."""


@frozen
class Cached:
    """A stored response."""

    url: str
    status: int
    headers: list[list[str]]
    body: bytes
    vary: dict[str, str | None]
    """Request header values for the names the response's ``Vary`` lists."""


# ---- helpers ------------------------------------------------------------------------


def _headers(value: Any, what: str) -> list[list[str]]:
    if not isinstance(value, list | tuple):
        raise type_error(f"{what} must be a list of [name, value] pairs")
    out: list[list[str]] = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise type_error(f"{what} must be a list of [name, value] string pairs, got {pair!r}")
        out.append([pair[0], pair[1]])
    return out


def _header(headers: list[list[str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name]
    return ", ".join(values) if values else None


def cache_control(value: str | None) -> dict[str, str | None]:
    """Parse a ``Cache-Control`` value into lower-cased directives."""
    out: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, sep, arg = part.strip().partition("=")
        if name:
            out.setdefault(name.strip().lower(), arg.strip().strip('"') if sep else None)
    return out


def _seconds(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _parse(url: Any) -> ada_url.URL | None:
    if not isinstance(url, str):
        raise type_error(f"request URL must be a string, got {type(url).__name__}")
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        return None
    parsed.hash = ""
    return parsed


def _without_search(url: str) -> str:
    parsed = ada_url.URL(url)
    parsed.search = ""
    return parsed.href


def _opts(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise type_error("cache query options must be an object")
    return value


def _cache(space: Space, cfg: KVLRUConfig, name: Any) -> Table:
    check_name("cache name", name, cfg.max_key_bytes)
    table = space.tables.get(name)
    if table is None:
        if name != DEFAULT:
            raise KVError(
                "InvalidStateError",
                f"cache {name!r} does not exist in namespace {space.name!r} (deleted with "
                f"caches.delete()?); open it again with caches.open({name!r})",
            )
        table = space.tables[DEFAULT] = Table(space, DEFAULT, cfg.max_cache_entries)
    return table


def _vary_matches(cached: Cached, req_headers: list[list[str]]) -> bool:
    return all(_header(req_headers, name) == value for name, value in cached.vary.items())


def _query(table: Table, url: Any, method: Any, req_headers: Any, opts: dict[str, Any]) -> list[str]:
    """Keys of the entries matching a request (Query Cache of the spec)."""
    if method not in (None, "GET") and not opts.get("ignoreMethod"):
        return []
    parsed = _parse(url)
    if parsed is None:
        return []
    headers = _headers(req_headers or [], "request headers")
    table.space.purge()
    if opts.get("ignoreSearch"):
        target = _without_search(parsed.href)
        keys = [k for k in table.entries if _without_search(k) == target]
    else:
        keys = [parsed.href] if parsed.href in table.entries else []
    if not opts.get("ignoreVary"):
        keys = [k for k in keys if _vary_matches(table.entries[k].value, headers)]
    return keys


# ---- ops ----------------------------------------------------------------------------


def cache_open(space: Space, cfg: KVLRUConfig, name: Any) -> None:
    """Open (creating if needed) cache ``name``."""
    check_name("cache name", name, cfg.max_key_bytes)
    if name in space.tables or name == DEFAULT:
        _cache(space, cfg, name)
        return None
    named = [n for n in space.tables if n != DEFAULT]
    if len(named) >= cfg.max_caches:
        raise KVError(
            "QuotaExceededError",
            f"namespace {space.name!r} already has {len(named)} caches; the limit is {cfg.max_caches}",
        )
    space.tables[name] = Table(space, name, cfg.max_cache_entries)
    return None


def cache_has(space: Space, cfg: KVLRUConfig, name: Any) -> bool:
    """Whether cache ``name`` exists (``default`` always does)."""
    check_name("cache name", name, cfg.max_key_bytes)
    return name == DEFAULT or name in space.tables


def cache_drop(space: Space, cfg: KVLRUConfig, name: Any) -> bool:
    """Delete cache ``name`` (``default`` is emptied instead); True if it existed."""
    check_name("cache name", name, cfg.max_key_bytes)
    existed = space.drop(name)
    return existed or name == DEFAULT


def cache_names(space: Space, cfg: KVLRUConfig) -> list[str]:
    """Names of the caches opened with ``caches.open``, in creation order."""
    return [n for n in space.tables if n != DEFAULT]


def cache_match(
    space: Space, cfg: KVLRUConfig, name: Any, url: Any, method: Any, req_headers: Any, opts: Any = None
) -> list[Any] | None:
    """``[status, headers, body]`` of the first matching live entry, or None."""
    table = _cache(space, cfg, name)
    keys = _query(table, url, method, req_headers, _opts(opts))
    if not keys:
        table.stats.misses += 1
        return None
    entry = table.get(min(keys, key=lambda k: table.entries[k].created))
    assert entry is not None  # _query purged; nothing expires in between
    table.stats.hits += 1
    cached: Cached = entry.value
    return [cached.status, cached.headers, cached.body]


def cache_put(
    space: Space,
    cfg: KVLRUConfig,
    name: Any,
    url: Any,
    req_headers: Any,
    status: Any,
    resp_headers: Any,
    body: Any,
    method: Any = "GET",
) -> None:
    """Store a response for a GET request to ``url`` (see the module docs for the rules)."""
    table = _cache(space, cfg, name)
    if method != "GET":
        raise type_error(f"Cache.put: request method {method!r} is unsupported; only GET is")
    parsed = _parse(url)
    if parsed is None:
        raise type_error(f"Cache.put: invalid request URL {url!r}")
    if parsed.protocol not in ("http:", "https:"):
        raise type_error(f"Cache.put: request scheme {parsed.protocol!r} is unsupported; use http or https")
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise KVError("RangeError", f"Cache.put: invalid response status {status!r}")
    if status == 206:
        raise type_error("Cache.put: partial responses (status 206) cannot be cached")
    resp = _headers(resp_headers, "response headers")
    req = _headers(req_headers or [], "request headers")
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise type_error(f"Cache.put: body must be bytes, got {type(body).__name__}")
    vary_names = [v.strip().lower() for v in (_header(resp, "vary") or "").split(",") if v.strip()]
    if "*" in vary_names:
        raise type_error("Cache.put: a response with 'Vary: *' cannot be cached")
    directives = cache_control(_header(resp, "cache-control"))
    if "no-store" in directives:
        return None
    ttl = _seconds(directives.get("s-maxage"))
    if ttl is None:
        ttl = _seconds(directives.get("max-age"))
    if ttl == 0:
        return None
    key = parsed.href
    vary = {n: _header(req, n) for n in vary_names}
    size = (
        len(key.encode())
        + len(body)
        + sum(len(k.encode()) + len(v.encode()) for k, v in resp)
        + sum(len(k.encode()) + len((v or "").encode()) for k, v in vary.items())
    )
    if size > cfg.max_value_bytes:
        raise KVError(
            "QuotaExceededError",
            f"Cache.put: response for {key} is {size} bytes; "
            f"the largest entry is {cfg.max_value_bytes} bytes",
        )
    table.put(key, Cached(key, status, resp, body, vary), size, None if ttl is None else float(ttl))
    return None


def cache_delete(space: Space, cfg: KVLRUConfig, name: Any, url: Any, method: Any, opts: Any = None) -> bool:
    """Delete every entry matching the request; True if any was."""
    table = _cache(space, cfg, name)
    options = _opts(opts)
    keys = _query(table, url, method, [], {**options, "ignoreVary": True})
    for key in keys:
        table.delete(key)
    return bool(keys)


def cache_keys(space: Space, cfg: KVLRUConfig, name: Any, url: Any = None, opts: Any = None) -> list[str]:
    """URLs of the live entries (matching ``url`` when given), in insertion order."""
    table = _cache(space, cfg, name)
    options = _opts(opts)
    if url is None:
        table.space.purge()
        keys = list(table.entries)
    else:
        keys = _query(table, url, options.get("method", "GET"), [], {**options, "ignoreVary": True})
    return sorted(keys, key=lambda k: table.entries[k].created)


OPS = {
    "cache.open": cache_open,
    "cache.has": cache_has,
    "cache.drop": cache_drop,
    "cache.names": cache_names,
    "cache.match": cache_match,
    "cache.put": cache_put,
    "cache.delete": cache_delete,
    "cache.keys": cache_keys,
}
