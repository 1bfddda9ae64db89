# ruff: noqa: E501  (embedded JavaScript)
"""KV storage, the Cache API and fetch(): Call/Result and Fetch frames.

The harness answers Call frames with the real kv_lru backend (as the kernel does)
and Fetch frames with an in-test responder (the kernel's outbound performer).
"""

from __future__ import annotations

import pytest
import trio

from kernel import protocol as p

from .harness import start_worker
from .test_apis import handler

kv_backend = pytest.importorskip("plugins.kv_lru.backend")


async def test_kv_storage(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        handler("""
      const store = await noslate.kvStorages.open("s1", { evictionStrategy: "lru" });
      await store.set("text", "héllo");
      await store.set("bin", new Uint8Array([0, 255, 1]));
      await store.set("json", JSON.stringify({ a: [1, 2] }));
      await store.set("tmp", "x", { ttlMs: 60000 });
      const out = {
        bytes: [...await store.get("bin")],
        text: await store.get("text", { type: "text" }),
        json: await store.get("json", { type: "json" }),
        ab: (await store.get("bin", { type: "arrayBuffer" })).byteLength,
        missing: await store.get("nope"),
        list: (await store.list()).sort(),
        deleted: [await store.delete("tmp"), await store.delete("tmp")],
      };
      try { await store.get(42); } catch (e) { out.badKey = e.name; }
      try { await store.set("k".repeat(600), "v"); } catch (e) { out.longKey = e.name; }
      try { await store.set("k", {}); } catch (e) { out.badValue = e.name; }
      out.missing = out.missing === undefined ? "undefined" : out.missing;
      return Response.json(out);
    """),
    )
    r = await w.request()
    assert r.status == 200, r.failure
    assert r.json() == {
        "bytes": [0, 255, 1],
        "text": "héllo",
        "json": {"a": [1, 2]},
        "ab": 3,
        "missing": "undefined",
        "list": ["bin", "json", "text", "tmp"],
        "deleted": [True, False],
        "badKey": "TypeError",
        "longKey": "TypeError",
        "badValue": "TypeError",
    }
    ops = [c.op for c in w.calls]
    assert ops[0] == "kv.open" and "kv.set" in ops and "kv.list" in ops
    set_bin = next(c for c in w.calls if c.op == "kv.set" and c.args[1] == "bin")
    assert set_bin.args[2] == b"\x00\xff\x01"  # msgpack bin, not a string
    # a second instance of the same function sees the writes (shared backend)
    w2 = await start_worker(
        nursery,
        handler("""
      const store = await noslate.kvStorages.open("s1");
      return new Response(await store.get("text", { type: "text" }));
    """),
        kv=w.kv,
    )
    assert (await w2.request()).text() == "héllo"
    w.kill()
    w2.kill()


async def test_kv_quota_errors_map_to_domexception(nursery: trio.Nursery) -> None:
    from plugins.kv_lru.config import KVLRUConfig

    backend = kv_backend.LRUBackend(KVLRUConfig(max_stores=1))
    w = await start_worker(
        nursery,
        handler("""
      await noslate.kvStorages.open("one");
      try { await noslate.kvStorages.open("two"); return new Response("opened"); }
      catch (e) { return Response.json([e.name, e instanceof DOMException]); }
    """),
        kv=backend,
    )
    r = await w.request()
    assert r.json() == ["QuotaExceededError", True]
    w.kill()


async def test_cache_api(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        handler("""
      const c = caches.default;
      const url = "https://example.com/page";
      await c.put(url, new Response("cached body", { headers: { "content-type": "text/x", "cache-control": "max-age=60" } }));
      const hit = await c.match(url);
      const named = await caches.open("mine");
      await named.put(new Request("https://example.com/b"), new Response("b"));
      const out = {
        hit: [hit.status, hit.headers.get("content-type"), await hit.text()],
        miss: (await c.match("https://example.com/other")) === undefined,
        keys: (await named.keys()).map((r) => r.url),
        has: await caches.has("mine"),
        deleted: await c.delete(url),
        after: (await c.match(url)) === undefined,
      };
      try { await c.put(new Request(url, { method: "POST", body: "x" }), new Response("x")); } catch (e) { out.post = e.name; }
      try { await c.put("ftp://x/", new Response("x")); } catch (e) { out.scheme = e.name; }
      try { await c.put(url, new Response("x", { status: 206 })); } catch (e) { out.partial = e.name; }
      return Response.json(out);
    """),
    )
    r = await w.request()
    assert r.status == 200, r.failure
    assert r.json() == {
        "hit": [200, "text/x", "cached body"],
        "miss": True,
        "keys": ["https://example.com/b"],
        "has": True,
        "deleted": True,
        "after": True,
        "post": "TypeError",
        "scheme": "TypeError",
        "partial": "TypeError",
    }
    w.kill()


def echo(_w, f: p.Fetch, body: bytes):
    headers = [("content-type", "application/json"), ("x-echo-method", f.method)]
    import json

    payload = json.dumps({"url": f.url, "body": body.decode(), "headers": dict(f.headers)}).encode()
    return 200, headers, payload


async def test_fetch_subrequest(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        handler("""
      const r = await fetch("https://api.example.com/x?y=1", { method: "POST", body: "ping", headers: { "x-k": "v" } });
      const data = await r.json();
      return Response.json({ status: r.status, method: r.headers.get("x-echo-method"), data, ok: r.ok });
    """),
    )
    w.fetch_handler = echo
    r = await w.request()
    assert r.status == 200, r.failure
    assert r.json() == {
        "status": 200,
        "method": "POST",
        "ok": True,
        "data": {
            "url": "https://api.example.com/x?y=1",
            "body": "ping",
            "headers": {"x-k": "v", "content-type": "text/plain;charset=UTF-8"},
        },
    }
    assert w.fetches[0].rid == r.rid
    w.kill()


async def test_fetch_large_body_both_ways(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        handler("""
      const big = new Uint8Array(300000).map((_, i) => i % 7);
      const r = await fetch("https://api.example.com/up", { method: "PUT", body: new Response(big).body, duplex: "half" });
      const back = new Uint8Array(await r.arrayBuffer());
      return Response.json({ n: back.length, sum: back.reduce((a, b) => a + b, 0) });
    """),
    )
    w.fetch_handler = lambda _w, f, body: (200, [], body)
    r = await w.request()
    assert r.status == 200, r.failure
    assert r.json() == {"n": 300000, "sum": sum(i % 7 for i in range(300000))}
    w.kill()


async def test_fetch_errors_and_abort(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        handler("""
      const out = {};
      try { await fetch("https://blocked.example/"); } catch (e) { out.refused = [e.name, e.message]; }
      try { await fetch("not a url"); } catch (e) { out.badUrl = e.name; }
      const ac = new AbortController();
      const pending = fetch("https://slow.example/", { signal: ac.signal });
      ac.abort();
      try { await pending; } catch (e) { out.aborted = e.name; }
      return Response.json(out);
    """),
    )
    r = await w.request()
    assert r.json() == {
        "refused": ["TypeError", "no outbound network in this test"],
        "badUrl": "TypeError",
        "aborted": "AbortError",
    }
    w.kill()
