"""kv_redis: three daemons sharing one real Redis; the outage gives a clear JS error.

Before, each daemon had its own KV: ``examples/counter`` counted 1, 1, 2, 2, 3, 3 behind
a balancer. Now a counter incremented 3,000 times round-robin across three daemons
reads 3,000 on each, and with Redis stopped KV calls fail within their deadline with
``KVError: storage unavailable`` while other functions are served as usual.
"""

from __future__ import annotations

import time
from pathlib import Path

import conftest
import httpx
import pytest
from kv.servers import KVServer, binary

pytestmark = pytest.mark.skipif(binary("redis") is None, reason="redis-server is not installed")
PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "kv_redis", "outbound_http", "runtime_v8", "warmfork"]
COUNTER = """
export default { async fetch(req) {
  try {
    const store = await noslate.kvStorages.open("counters");
    const now = (await store.get("n", "text")) ?? 0;
    if (new URL(req.url).pathname === "/read") return new Response(String(now));
    const n = Number(now) + 1;
    await store.set("n", String(n));
    return new Response(String(n));
  } catch (e) { return new Response(e.name + ": " + e.message, { status: 503 }); }
} };
"""
PLAIN = "export default { fetch() { return new Response('plain'); } };"


def test_a_counter_shared_by_three_daemons_and_a_redis_outage(tmp_path: Path) -> None:
    redis = KVServer("redis", tmp_path / "redis").start()
    kv = {"url": redis.url, "timeout": 0.5, "cluster_rate_limit": True}
    config = {"kv": {"backend": "redis"}, "plugins": {"kv_redis": kv}}
    daemons = []
    try:
        for i in range(3):
            (tmp_path / f"d{i}").mkdir()
            d = conftest.Daemon(tmp_path / f"d{i}", config, PLUGINS, {}).start()
            daemons.append(d)
            d.deploy("counter", COUNTER, filename="w.mjs")
            d.deploy("plain", PLAIN, filename="w.mjs")
            limited = {"rateLimit": {"maxTokenCount": 5, "tokensPerFill": 1, "fillInterval": 600000}}
            d.deploy("limited", PLAIN, limited, filename="w.mjs")
        clients = [
            httpx.Client(base_url=d.data_url, headers={"host": d.host_header("counter")}) for d in daemons
        ]
        try:
            for i in range(3000):  # keep-alive connections: the test measures KV, not TCP
                r = clients[i % 3].get("/")
                assert r.status_code == 200, r.text
        finally:
            for client in clients:
                client.close()
        assert [d.request("counter", "/read").text for d in daemons] == ["3000"] * 3
        # one bucket of 5 for the whole cluster (per daemon it would admit 15)
        statuses = [daemons[i % 3].request("limited").status_code for i in range(15)]
        assert statuses.count(200) == 5 and statuses.count(429) == 10, statuses
        r = daemons[1].request("limited")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        redis.stop()
        t0 = time.monotonic()
        r = daemons[0].request("counter", "/", timeout=10)
        took = time.monotonic() - t0
        assert r.status_code == 503 and r.text.startswith("KVError: storage unavailable"), r.text
        assert took < 2.0, took  # the call's deadline (0.5 s), not a hung request
        assert all(d.request("plain").text == "plain" for d in daemons)
        metrics = daemons[0].control("GET", "/metrics").text
        assert 'noslate_kv_unavailable_total{backend="redis"}' in metrics
    finally:
        for d in daemons:
            d.stop()
        redis.stop()
