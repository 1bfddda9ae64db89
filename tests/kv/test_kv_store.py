"""kv.* ops of the LRU backend: LRU order, exact quotas, TTL, validation, isolation."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import FakeClock, backend, call, raises


def _open(b, ns="ns", *stores):
    for s in stores or ("s",):
        call(b, ns, "kv.open", s, {"evictionStrategy": "lru"})


def _bytes(b, ns="ns"):
    return b.space("kv", ns).bytes


async def test_call_is_the_async_entry_point():
    b = backend()
    assert await b.call("ns", "kv.open", ["s", {}]) is None
    assert await b.call("ns", "kv.set", ["s", "k", b"v", None]) is None
    assert await b.call("ns", "kv.get", ["s", "k"]) == b"v"


def test_get_set_delete_list_roundtrip():
    b = backend()
    _open(b)
    assert call(b, "ns", "kv.get", "s", "k") is None
    call(b, "ns", "kv.set", "s", "k", b"\x00\xffvalue", None)
    assert call(b, "ns", "kv.get", "s", "k") == b"\x00\xffvalue"
    call(b, "ns", "kv.set", "s", "j", bytearray(b"x"))
    assert call(b, "ns", "kv.list", "s") == ["k", "j"]
    assert call(b, "ns", "kv.delete", "s", "k") is True
    assert call(b, "ns", "kv.delete", "s", "k") is False
    assert call(b, "ns", "kv.list", "s") == ["j"]


def test_entry_limit_evicts_least_recently_used():
    b = backend(max_entries=3)
    _open(b)
    for k in "abc":
        call(b, "ns", "kv.set", "s", k, k.encode())
    call(b, "ns", "kv.get", "s", "a")  # a is now most recent: order b, c, a
    call(b, "ns", "kv.set", "s", "d", b"d")
    assert call(b, "ns", "kv.list", "s") == ["c", "a", "d"]
    call(b, "ns", "kv.set", "s", "c", b"C")  # overwrite refreshes too: a, d, c
    call(b, "ns", "kv.set", "s", "e", b"e")
    assert call(b, "ns", "kv.list", "s") == ["d", "c", "e"]
    assert b.inspect()["namespaces"]["ns"]["kv"]["stores"]["s"]["evictions"] == 2
    assert _bytes(b) == 3 * 2


def test_quota_evicts_lru_across_stores_with_exact_bytes():
    b = backend(quota_bytes=100)
    _open(b, "ns", "s1", "s2")
    call(b, "ns", "kv.set", "s1", "a", b"x" * 29)  # 30 bytes
    call(b, "ns", "kv.set", "s2", "b", b"x" * 29)  # 30
    call(b, "ns", "kv.set", "s1", "c", b"x" * 29)  # 30 -> 90
    assert _bytes(b) == 90
    call(b, "ns", "kv.get", "s1", "a")  # LRU order now: s2/b, s1/c, s1/a
    call(b, "ns", "kv.set", "s2", "d", b"x" * 40)  # needs 41: evicts b then c
    assert call(b, "ns", "kv.list", "s1") == ["a"]
    assert call(b, "ns", "kv.list", "s2") == ["d"]
    assert _bytes(b) == 71


def test_value_larger_than_quota_is_refused_and_changes_nothing():
    b = backend(quota_bytes=50)
    _open(b)
    call(b, "ns", "kv.set", "s", "k", b"old")
    with raises("QuotaExceededError", "quota"):
        call(b, "ns", "kv.set", "s", "k", b"x" * 50)  # 1 + 50 > 50
    assert call(b, "ns", "kv.get", "s", "k") == b"old"
    assert _bytes(b) == 4
    call(b, "ns", "kv.set", "s", "k", b"x" * 49)  # exactly the quota fits
    assert _bytes(b) == 50


def test_value_over_the_frame_limit_is_refused():
    b = backend(max_value_bytes=10)
    _open(b)
    with raises("QuotaExceededError", "largest value"):
        call(b, "ns", "kv.set", "s", "k", b"x" * 11)


def test_bytes_exact_after_overwrite_delete_and_expiry():
    clock = FakeClock()
    b = backend(clock)
    _open(b)
    call(b, "ns", "kv.set", "s", "ké", b"12345", None)  # 3 + 5
    assert _bytes(b) == 8
    call(b, "ns", "kv.set", "s", "ké", b"1", None)
    assert _bytes(b) == 4
    call(b, "ns", "kv.set", "s", "t", b"abc", 500)
    assert _bytes(b) == 8
    clock.advance(0.5)
    assert _bytes(b) == 8  # nothing purged yet; the next op or a sweep does
    assert call(b, "ns", "kv.get", "s", "t") is None
    assert _bytes(b) == 4
    assert call(b, "ns", "kv.delete", "s", "ké") is True
    assert _bytes(b) == 0


def test_ttl_expiry_under_fake_clock():
    clock = FakeClock()
    b = backend(clock)
    _open(b)
    call(b, "ns", "kv.set", "s", "k", b"v", 1000)
    call(b, "ns", "kv.set", "s", "forever", b"v", None)
    clock.advance(0.999)
    assert call(b, "ns", "kv.get", "s", "k") == b"v"
    clock.advance(0.001)
    assert call(b, "ns", "kv.get", "s", "k") is None
    assert call(b, "ns", "kv.list", "s") == ["forever"]
    stats = b.inspect()["namespaces"]["ns"]["kv"]["stores"]["s"]
    assert stats["expirations"] == 1
    assert stats["hits"] == 1 and stats["misses"] == 1


def test_overwrite_without_ttl_clears_the_expiry():
    clock = FakeClock()
    b = backend(clock)
    _open(b)
    call(b, "ns", "kv.set", "s", "k", b"v", 10)
    call(b, "ns", "kv.set", "s", "k", b"w", None)
    clock.advance(3600)
    assert call(b, "ns", "kv.get", "s", "k") == b"w"
    assert not b.space("kv", "ns").expiry


def test_sweep_releases_bytes_of_idle_namespaces():
    clock = FakeClock()
    b = backend(clock)
    _open(b)
    call(b, "ns", "kv.set", "s", "k", b"v", 5)
    clock.advance(1)
    assert b.purge() == 1
    assert _bytes(b) == 0


def test_ttl_validation():
    b = backend()
    _open(b)
    with raises("TypeError", "ttlMs"):
        call(b, "ns", "kv.set", "s", "k", b"v", 0)
    with raises("TypeError", "ttlMs"):
        call(b, "ns", "kv.set", "s", "k", b"v", float("inf"))
    with raises("TypeError", "ttlMs"):
        call(b, "ns", "kv.set", "s", "k", b"v", "10")


def test_key_validation():
    b = backend()
    _open(b)
    call(b, "ns", "kv.set", "s", "é" * 256, b"v")  # 512 UTF-8 bytes: allowed
    assert call(b, "ns", "kv.get", "s", "é" * 256) == b"v"
    with raises("TypeError", "513 UTF-8 bytes"):
        call(b, "ns", "kv.set", "s", "é" * 256 + "x", b"v")
    with raises("TypeError", "key must be a string"):
        call(b, "ns", "kv.get", "s", 42)
    with raises("TypeError", "surrogate"):
        call(b, "ns", "kv.set", "s", "\ud800", b"v")
    with raises("TypeError", "value must be bytes"):
        call(b, "ns", "kv.set", "s", "k", "text")


def test_open_options_and_store_limits():
    b = backend(max_stores=2)
    with raises("TypeError", "evictionStrategy"):
        call(b, "ns", "kv.open", "s", {"evictionStrategy": "lfu"})
    call(b, "ns", "kv.open", "s", {})
    call(b, "ns", "kv.open", "t", None)
    call(b, "ns", "kv.open", "s", {"evictionStrategy": "lru"})  # reopening is fine
    with raises("QuotaExceededError", "limit is 2"):
        call(b, "ns", "kv.open", "u", {})


def test_store_not_open_is_invalid_state():
    b = backend()
    with raises("InvalidStateError", "kvStorages.open"):
        call(b, "ns", "kv.get", "nope", "k")


def test_defaults_match_noslate():
    limits = backend().inspect()["limits"]
    assert limits["max_stores"] == 8
    assert limits["max_entries"] == 4096
    assert limits["max_key_bytes"] == 512
    assert limits["quota_bytes"] == 256 * 1024 * 1024


def test_namespaces_are_isolated():
    b = backend()
    _open(b, "a")
    call(b, "a", "kv.set", "s", "k", b"secret")
    with raises("InvalidStateError"):
        call(b, "b", "kv.get", "s", "k")
    _open(b, "b")
    assert call(b, "b", "kv.get", "s", "k") is None
    assert call(b, "b", "kv.list", "s") == []
    assert _bytes(b, "b") == 0 and _bytes(b, "a") == 7


def test_bad_calls():
    b = backend()
    with raises("TypeError", "unknown host call"):
        call(b, "ns", "kv.frobnicate")
    with raises("TypeError", "takes 2 arguments, got 1"):
        call(b, "ns", "kv.get", "s")


# ---- model-based: the backend against a plain reference implementation -------------

_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            st.sampled_from("AB"),
            st.sampled_from("abcdef"),
            st.integers(0, 40),
            st.one_of(st.none(), st.integers(1, 3000)),
        ),
        st.tuples(st.just("get"), st.sampled_from("AB"), st.sampled_from("abcdef")),
        st.tuples(st.just("delete"), st.sampled_from("AB"), st.sampled_from("abcdef")),
        st.tuples(st.just("tick"), st.integers(0, 1500)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_matches_reference_model(ops):
    clock = FakeClock()
    b = backend(clock, quota_bytes=120, max_entries=4)
    run_model(b, clock, ops, purge=b.purge, kv_bytes=lambda: _bytes(b))


def run_model(b, clock, ops, *, purge, kv_bytes):
    """Replay ``ops`` on backend ``b`` (quota 120 bytes, 4 entries per store, stores A
    and B of namespace ``ns``) and on a plain reference model; every step must agree.
    tests/kv/test_kv_redis.py runs it unchanged on kv_redis (Redis and Valkey)."""
    _open(b, "ns", "A", "B")
    model: OrderedDict[tuple[str, str], tuple[int, float | None]] = OrderedDict()

    def purge_model():
        for k, (_, exp) in list(model.items()):
            if exp is not None and exp <= clock.now:
                del model[k]

    for op in ops:
        purge_model()
        if op[0] == "tick":
            clock.advance(op[1] / 1000)
        elif op[0] == "get":
            _, s, k = op
            got = call(b, "ns", "kv.get", s, k)
            assert (got is not None) == ((s, k) in model)
            if (s, k) in model:
                model.move_to_end((s, k))
        elif op[0] == "delete":
            _, s, k = op
            assert call(b, "ns", "kv.delete", s, k) == ((s, k) in model)
            model.pop((s, k), None)
        else:
            _, s, k, n, ttl = op
            call(b, "ns", "kv.set", s, k, b"v" * n, ttl)
            model.pop((s, k), None)
            while sum(1 for key in model if key[0] == s) >= 4:
                del model[next(key for key in model if key[0] == s)]
            while sum(size for size, _ in model.values()) + 1 + n > 120:
                model.popitem(last=False)
            model[(s, k)] = (1 + n, None if ttl is None else clock.now + ttl / 1000)
        purge_model()
        purge()  # what inspect() and the sweeper do; ops purge lazily
        assert kv_bytes() == sum(size for size, _ in model.values())
        for s in "AB":
            assert call(b, "ns", "kv.list", s) == [k for (ms, k) in model if ms == s]
