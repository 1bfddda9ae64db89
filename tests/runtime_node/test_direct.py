"""The shared conformance cases and host calls, directly over a socketpair (no daemon).

Each worker is a real ``node`` process started by NodeRuntime.start, from a startup
snapshot and without one. ``busyloop`` needs the kernel's CPU watchdog: see
test_daemon.py.
"""

from __future__ import annotations

import pytest
from conformance import CASES, CONFORMANCE, body_file, requests_of

from kernel import protocol as p
from kernel.interfaces import KVError

from .harness import deploy, make_runtime, start

DIRECT = [c for c in CASES if "cpu_limit_ms" not in c]


def check(reply, expect, name):
    where = f"{name}: {reply.status} {reply.body[:300]!r} {reply.failure}"
    if "status" in expect:
        assert reply.status == expect["status"], where
    if "status_range" in expect:
        lo, hi = expect["status_range"]
        assert lo <= reply.status <= hi, where
    headers = {}
    for k, v in reply.head.headers if reply.head else []:
        headers[k.lower()] = f"{headers[k.lower()]}, {v}" if k.lower() in headers else v
    for key, value in expect.get("headers", {}).items():
        assert headers.get(key) == value, f"{where}: header {key}={headers.get(key)!r}"
    if "body" in expect:
        assert reply.body.decode() == expect["body"], where
    if "body_json" in expect:
        assert reply.json() == expect["body_json"], where
    for bad in expect.get("body_excludes", []):
        assert bad.encode() not in reply.body, where


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("node-direct")


PLAIN = {"sw-hello", "module-hello", "large-body", "stream-body", "no-leak", "throws", "echo-post"}
PARAMS = [pytest.param(c, True, id=f"{c['name']}-snapshot") for c in DIRECT] + [
    pytest.param(c, False, id=f"{c['name']}-plain") for c in DIRECT if c["name"] in PLAIN
]


@pytest.mark.parametrize(("case", "snapshot"), PARAMS)
async def test_conformance_case(case, snapshot, state):
    runtime, _ = make_runtime(state)
    worker_file = CONFORMANCE / case["worker"]
    fv = await deploy(runtime, worker_file.read_bytes(), worker_file.name)
    worker = await start(runtime, fv, snapshot=snapshot)
    try:
        assert worker.hello.runtime == "nodejs"
        assert worker.hello.info["snapshot"] is snapshot
        for req in requests_of(case):
            body = req.get("body")
            if req.get("body_file") == "seq1m":
                body = body_file("seq1m")
            headers = [("x-test", "t1"), ("user-agent", "conformance/1"), *req.get("headers", {}).items()]
            reply = await worker.request(
                req["method"], req["path"], body.encode() if isinstance(body, str) else body, headers
            )
            check(reply, req["expect"], case["name"])
    finally:
        worker.kill()


KV_WORKER = b"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  const url = new URL(event.request.url);
  const store = await noslate.kvStorages.open("s1");
  if (url.pathname === "/set") {
    await store.set("k", "v-" + url.search.slice(1));
    return new Response("ok");
  }
  if (url.pathname === "/bad") {
    try { await store.set(42, "x"); }
    catch (e) { return new Response(e.name + ":" + e.message, { status: 400 }); }
  }
  if (url.pathname === "/quota") {
    try { await store.set("big", "x"); } catch (e) { return new Response(e.name, { status: 507 }); }
  }
  const cache = await caches.open("c");
  if (url.pathname === "/cache") {
    await cache.put("https://e.test/a", new Response("cached body", { headers: { "x-c": "1" } }));
    const hit = await cache.match("https://e.test/a");
    return new Response(await hit.text() + "|" + hit.headers.get("x-c"));
  }
  return Response.json({ value: await store.get("k", "text"), keys: await store.list() });
})()));
"""


async def test_kv_and_cache_through_the_real_backend(tmp_path):
    backend_mod = pytest.importorskip("plugins.kv_lru.backend")
    backend = backend_mod.LRUBackend()

    async def calls(f: p.Call) -> p.Result:
        try:
            return p.Result(f.cid, True, await backend.call("fn", f.op, f.args))
        except KVError as exc:
            return p.Result(f.cid, False, None, exc.name, str(exc))

    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, KV_WORKER, "kv.js")
    worker = await start(runtime, fv, calls=calls)
    try:
        assert (await worker.request("GET", "/set?abc")).body == b"ok"
        reply = await worker.request("GET", "/get")
        assert reply.json() == {"value": "v-abc", "keys": ["k"]}
        assert backend.call_sync("fn", "kv.get", ["s1", "k"]) == b"v-abc"
        bad = await worker.request("GET", "/bad")
        assert bad.status == 400 and bad.body.startswith(b"TypeError:")
        cached = await worker.request("GET", "/cache")
        assert cached.body == b"cached body|1"
    finally:
        worker.kill()


FETCH_WORKER = b"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  const r = await fetch("http://upstream.test/x", { method: "POST", body: "ping", headers: { "x-up": "1" } });
  return new Response(r.status + " " + (await r.text()) + " " + r.headers.get("x-down"));
})()));
"""


async def test_fetch_goes_through_the_kernel(tmp_path):
    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, FETCH_WORKER, "fetch.js")
    worker = await start(runtime, fv)
    try:
        await worker.send(p.Request(1, "GET", "http://fn.localhost/", [], False))
        seen: list[p.Frame] = []
        body = b""
        while True:
            f = await worker._next()
            assert f is not None
            seen.append(f)
            if isinstance(f, p.Fetch):
                assert (f.method, f.url, f.has_body, f.rid) == ("POST", "http://upstream.test/x", True, 1)
                assert ("x-up", "1") in f.headers
                fid = f.fid
            elif isinstance(f, p.Chunk) and f.sid < 0:
                body += f.data
                await worker.send(p.Ack(f.sid, 1))
            elif isinstance(f, p.End) and f.sid < 0:
                assert body == b"ping"
                await worker.send(
                    p.FetchResponse(fid, 201, "Created", [("x-down", "2")], "http://upstream.test/x", True)
                )
                await worker.send(p.Chunk(-fid, b"pong"))
                await worker.send(p.End(-fid))
            elif isinstance(f, p.Chunk) and f.sid == 1:
                assert f.data == b"201 pong 2"
                await worker.send(p.Ack(1, 1))
            elif isinstance(f, p.Settled):
                break
        assert any(isinstance(f, p.Response) and f.status == 200 for f in seen)
    finally:
        worker.kill()


async def test_console_goes_to_log_frames(tmp_path):
    runtime, _ = make_runtime(tmp_path)
    code = (
        b'addEventListener("fetch", (e) => { console.log("hi", { a: 1 }); console.error("bad");'
        b' e.respondWith(new Response("x")); });'
    )
    fv = await deploy(runtime, code, "log.js")
    worker = await start(runtime, fv)
    try:
        await worker.request("GET", "/")
        texts = [(f.level, f.message, f.rid) for f in worker.logs]
        assert ("info", "hi { a: 1 }", 1) in texts
        assert ("error", "bad", 1) in texts
    finally:
        worker.kill()
