"""Snapshot-build warm-up (runtime path always, the user's handler opt-in), timers and
console lines of the top-level code, CompressionStream on Node's zlib."""

from __future__ import annotations

import pytest

from .harness import deploy, make_runtime, start

COUNTER = b"""
console.log("top-level ran");
let served = 0;
setTimeout(() => { globalThis.timerFired = true; }, 0);
addEventListener("fetch", (event) => event.respondWith((async () => {
  served += 1;
  console.log("serving " + served);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const path = new URL(event.request.url).pathname;
  return Response.json({ served, timerFired: globalThis.timerFired === true, path });
})()));
"""


@pytest.mark.parametrize("snap", [True, False], ids=["snapshot", "plain"])
async def test_runtime_warm_up_leaves_no_trace(tmp_path, snap):
    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, COUNTER, "counter.js")
    worker = await start(runtime, fv, snapshot=snap)
    try:
        data = (await worker.request("GET", "/a")).json()
        messages = [f.message for f in worker.logs]
    finally:
        worker.kill()
    # the first real request is the handler's first; the top-level timer fired after start
    assert data == {"served": 1, "timerFired": True, "path": "/a"}
    # the top-level console line (run at build time in a snapshot) reaches the log
    assert "top-level ran" in messages
    assert messages.count("serving 1") == 1


async def test_warmup_path_runs_the_handler_once_at_build(tmp_path):
    runtime, _ = make_runtime(tmp_path, warmup_path="/warm")
    fv = await deploy(runtime, COUNTER, "counter.js")
    worker = await start(runtime, fv)
    try:
        data = (await worker.request("GET", "/b")).json()
        messages = [f.message for f in worker.logs]
    finally:
        worker.kill()
    assert worker.hello.info["snapshot"] is True
    assert data["served"] == 2  # the build's GET /warm was the first
    assert "top-level ran" in messages
    assert "serving 1" not in messages  # the warm-up request's frames are dropped
    assert "serving 2" in messages


async def test_warmup_path_is_part_of_the_cache_key(tmp_path):
    plain, _ = make_runtime(tmp_path)
    warm, _ = make_runtime(tmp_path, warmup_path="/")
    await deploy(plain, COUNTER, "counter.js")
    await deploy(warm, COUNTER, "counter.js")
    assert plain.snapshots.builds == 1 and warm.snapshots.builds == 1
    assert len(list(plain.snapshots.root.glob("*/*.blob"))) == 2


COMPRESSION = b"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  const text = "hello compression ".repeat(2000);
  const out = {};
  const run = (data, stream) => new Response(new Blob([data]).stream().pipeThrough(stream));
  for (const format of ["gzip", "deflate", "deflate-raw"]) {
    const packed = await run(text, new CompressionStream(format)).arrayBuffer();
    const back = await run(packed, new DecompressionStream(format)).text();
    let truncated = "no error";
    try {
      await run(packed.slice(0, 20), new DecompressionStream(format)).text();
    } catch (e) { truncated = e.name; }
    out[format] = { smaller: packed.byteLength < text.length, same: back === text, truncated };
  }
  return Response.json(out);
})()));
"""


async def test_compression_streams_on_node_zlib(tmp_path):
    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, COMPRESSION, "zip.js")
    worker = await start(runtime, fv)
    try:
        reply = await worker.request("GET", "/")
    finally:
        worker.kill()
    assert reply.status == 200, (reply.failure, worker.logs)
    data = reply.json()
    for format in ("gzip", "deflate", "deflate-raw"):
        assert data[format] == {"smaller": True, "same": True, "truncated": "TypeError"}, (format, data)


THROWS_IN_RUNTIME = b"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  try { new Request("not a url"); } catch (e) { return new Response(String(e.stack)); }
  return new Response("no error");
})()));
"""


@pytest.mark.parametrize("snap", [True, False], ids=["snapshot", "plain"])
async def test_stack_traces_name_no_host_path(tmp_path, snap):
    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, THROWS_IN_RUNTIME, "stack.js")
    worker = await start(runtime, fv, snapshot=snap)
    try:
        stack = (await worker.request("GET", "/")).body.decode()
    finally:
        worker.kill()
    assert "TypeError" in stack and "noslate:runtime" in stack and "stack.js" in stack, stack
    assert str(tmp_path) not in stack and "/tmp" not in stack and "node_modules" not in stack, stack


PROFILE_WARMUP = b"""
const served = [];
addEventListener("fetch", (event) => event.respondWith((async () => {
  const request = event.request;
  const entry = { path: new URL(request.url).pathname, warm: request.headers.get("noslate-warmup") };
  if (entry.path === "/boom") throw new Error("no render");
  if (entry.warm) {
    await new Promise((resolve) => setTimeout(resolve, 5));  // timers run during warm-up
    const store = await noslate.kvStorages.open("s");
    await store.set("k", new TextEncoder().encode("scratch"));
    entry.readBack = new TextDecoder().decode(await store.get("k"));
    const r = await fetch("http://upstream.example/");
    entry.fetch = [r.status, await r.text()];
    if (request.method === "POST") entry.body = await request.text();
    setTimeout(() => { globalThis.lateTimer = true; }, 60000);  // dropped at the end
  }
  served.push(entry);
  return Response.json({ served, lateTimer: globalThis.lateTimer === true });
})()));
"""


async def test_profile_warmup_runs_in_the_build_with_scratch_kv_and_no_fetch(tmp_path):
    runtime, kernel = make_runtime(tmp_path)
    warm = [{"path": "/a"}, {"path": "/boom"}, {"path": "/b", "method": "POST", "body": "hi"}]
    fv = await deploy(runtime, PROFILE_WARMUP, "w.js", {"worker": {"warmup": warm}})
    worker = await start(runtime, fv)
    try:
        data = (await worker.request("GET", "/real")).json()
    finally:
        worker.kill()
    assert worker.hello.info["snapshot"] is True
    paths = [s["path"] for s in data["served"]]
    assert paths == ["/a", "/b", "/real"], data
    a, b, real = data["served"]
    assert a["readBack"] == "scratch"
    assert a["fetch"] == [503, "outbound fetch is not available during warm-up"]
    assert b["body"] == "hi" and real["warm"] is None and data["lateTimer"] is False
    (line,) = [m for _f, _lvl, m in kernel.lines if m.startswith("warm-up in the snapshot build")]
    assert "GET /a 200 in" in line and "GET /boom failed: 500" in line and "POST /b 200 in" in line, line
    assert [lvl for _f, lvl, m in kernel.lines if m is line] == ["warning"]
