"""cache.* ops: Cache API semantics of the LRU backend."""

from __future__ import annotations

from .helpers import FakeClock, backend, call, raises

URL = "https://example.com/page?x=1"


def _put(b, url=URL, status=200, headers=(), body=b"hello", cache="default", req=(), ns="ns", **kw):
    args = [cache, url, [list(h) for h in req], status, [list(h) for h in headers], body]
    if "method" in kw:
        args.append(kw["method"])
    return call(b, ns, "cache.put", *args)


def _match(b, url=URL, method="GET", req=(), opts=None, cache="default", ns="ns"):
    return call(b, ns, "cache.match", cache, url, method, [list(h) for h in req], opts)


def test_put_match_roundtrip_in_default_cache():
    b = backend()
    _put(b, headers=[("Content-Type", "text/plain")], status=201)
    assert _match(b) == [201, [["Content-Type", "text/plain"]], b"hello"]
    assert _match(b, url="https://example.com/page?x=2") is None
    assert _match(b, url=URL + "#frag") is not None  # fragments are ignored
    stats = b.inspect()["namespaces"]["ns"]["cache"]["caches"]["default"]
    assert (stats["hits"], stats["misses"]) == (2, 1)


def test_non_2xx_is_stored_as_the_spec_says():
    b = backend()
    _put(b, status=404, body=b"missing")
    assert _match(b)[0] == 404


def test_no_store_is_not_stored():
    b = backend()
    _put(b, headers=[("Cache-Control", "public, no-store")])
    assert _match(b) is None
    assert b.space("cache", "ns").bytes == 0


def test_max_age_and_s_maxage_expire_under_fake_clock():
    clock = FakeClock()
    b = backend(clock)
    _put(b, url="https://a.test/m", headers=[("Cache-Control", "max-age=60")])
    _put(b, url="https://a.test/s", headers=[("cache-control", 'max-age=600, s-maxage="10"')])
    _put(b, url="https://a.test/z", headers=[("Cache-Control", "max-age=0")])
    assert _match(b, url="https://a.test/z") is None
    clock.advance(9.9)
    assert _match(b, url="https://a.test/s") is not None
    clock.advance(0.1)
    assert _match(b, url="https://a.test/s") is None
    assert _match(b, url="https://a.test/m") is not None
    clock.advance(50)
    assert _match(b, url="https://a.test/m") is None
    assert b.space("cache", "ns").bytes == 0


def test_refused_puts_are_type_errors():
    b = backend()
    with raises("TypeError", "206"):
        _put(b, status=206)
    with raises("TypeError", r"Vary: \*"):
        _put(b, headers=[("Vary", "Accept, *")])
    with raises("TypeError", "only GET"):
        _put(b, method="POST")
    with raises("TypeError", "scheme 'ftp:'"):
        _put(b, url="ftp://example.com/x")
    with raises("TypeError", "invalid request URL"):
        _put(b, url="not a url")
    with raises("RangeError", "status"):
        _put(b, status=99)
    assert b.space("cache", "ns").entry_count() == 0


def test_ignore_search_and_ignore_method():
    b = backend()
    _put(b, url="https://e.test/p?a=1", body=b"1")
    _put(b, url="https://e.test/p?a=2", body=b"2")
    assert _match(b, url="https://e.test/p") is None
    assert _match(b, url="https://e.test/p", opts={"ignoreSearch": True})[2] == b"1"
    assert _match(b, url="https://e.test/p?a=2", method="POST") is None
    assert _match(b, url="https://e.test/p?a=2", method="POST", opts={"ignoreMethod": True})[2] == b"2"
    assert call(b, "ns", "cache.delete", "default", "https://e.test/p?a=2", "HEAD", None) is False
    assert call(b, "ns", "cache.delete", "default", "https://e.test/p", "GET", {"ignoreSearch": True})
    assert call(b, "ns", "cache.keys", "default", None, None) == []


def test_vary_selects_on_request_headers():
    b = backend()
    _put(b, headers=[("Vary", "Accept-Language")], req=[("Accept-Language", "fr")], body=b"bonjour")
    assert _match(b, req=[("accept-language", "fr")])[2] == b"bonjour"
    assert _match(b, req=[("Accept-Language", "en")]) is None
    assert _match(b, req=[("Accept-Language", "en")], opts={"ignoreVary": True}) is not None


def test_named_caches_open_has_drop_names():
    b = backend(max_caches=2)
    assert call(b, "ns", "cache.has", "default") is True
    assert call(b, "ns", "cache.has", "v1") is False
    with raises("InvalidStateError", "caches.open"):
        _put(b, cache="v1")
    call(b, "ns", "cache.open", "v1")
    call(b, "ns", "cache.open", "v2")
    call(b, "ns", "cache.open", "default")  # does not count against max_caches
    with raises("QuotaExceededError", "limit is 2"):
        call(b, "ns", "cache.open", "v3")
    assert call(b, "ns", "cache.names") == ["v1", "v2"]
    _put(b, cache="v1")
    assert _match(b, cache="v2") is None
    assert _match(b, cache="v1") is not None
    assert call(b, "ns", "cache.drop", "v1") is True
    assert call(b, "ns", "cache.drop", "v1") is False
    assert call(b, "ns", "cache.names") == ["v2"]
    assert b.space("cache", "ns").bytes == 0


def test_keys_in_insertion_order_and_accounting():
    b = backend()
    _put(b, url="https://k.test/b", headers=[("X", "yz")], body=b"12")
    _put(b, url="https://k.test/a", body=b"")
    _match(b, url="https://k.test/b")  # recency does not change key order
    assert call(b, "ns", "cache.keys", "default", None, None) == ["https://k.test/b", "https://k.test/a"]
    assert call(b, "ns", "cache.keys", "default", "https://k.test/a", {}) == ["https://k.test/a"]
    # url bytes + body bytes + header name/value bytes
    assert b.space("cache", "ns").bytes == (16 + 2 + 3) + 16
    _put(b, url="https://k.test/b", body=b"")  # overwrite: old size released
    assert b.space("cache", "ns").bytes == 16 + 16


def test_cache_quota_is_separate_and_evicts_lru():
    b = backend(cache_quota_bytes=100)
    call(b, "ns", "kv.open", "s", {})
    call(b, "ns", "kv.set", "s", "k", b"x" * 200)
    _put(b, url="https://q.test/1", body=b"x" * 40)  # 16 + 40
    _put(b, url="https://q.test/2", body=b"x" * 20)  # 16 + 20
    _match(b, url="https://q.test/1")
    _put(b, url="https://q.test/3", body=b"x" * 20)  # evicts /2, the least recently used
    assert call(b, "ns", "cache.keys", "default", None, None) == ["https://q.test/1", "https://q.test/3"]
    assert b.space("cache", "ns").bytes == 56 + 36
    with raises("QuotaExceededError"):
        _put(b, url="https://q.test/4", body=b"x" * 100)
    assert call(b, "ns", "kv.get", "s", "k") == b"x" * 200


def test_caches_are_per_namespace():
    b = backend()
    _put(b, ns="a")
    assert _match(b, ns="b") is None
    assert _match(b, ns="a") is not None
