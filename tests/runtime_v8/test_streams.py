# ruff: noqa: E501  (embedded JavaScript)
"""Body streaming over the channel: flow control in both directions, concurrency, aborts."""

from __future__ import annotations

import hashlib

import trio

from kernel import protocol as p

from .harness import Reply, start_worker

SLOW_READER = """
addEventListener("fetch", (event) => event.respondWith((async () => {
  await new Promise((r) => setTimeout(r, 300));   // read nothing for a while
  const reader = event.request.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value); n += value.length;
  }
  const all = new Uint8Array(n); let off = 0;
  for (const c of chunks) { all.set(c, off); off += c.length; }
  const d = await crypto.subtle.digest("SHA-256", all);
  const hex = [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return Response.json({ n, hex, chunks: chunks.length });
})()));
"""


async def test_upload_back_pressure(nursery: trio.Nursery) -> None:
    """A 2 MiB upload: the worker acks only what it consumed, so the sender stalls."""
    w = await start_worker(nursery, SLOW_READER)
    body = bytes(i % 253 for i in range(2 * 1024 * 1024))
    reply = await w.start_request("POST", "/up", body=body)
    await trio.sleep(0.15)
    assert w.acks.get(reply.rid, 0) == 0  # nothing consumed yet: at most WINDOW chunks in flight
    with trio.fail_after(15):
        await reply.done.wait()
        await reply.settled.wait()
    data = reply.json()
    assert data["n"] == len(body)
    assert data["hex"] == hashlib.sha256(body).hexdigest()
    assert w.acks[reply.rid] == len(body) // p.MAX_CHUNK
    w.kill()


STREAMER = """
addEventListener("fetch", (event) => {
  let i = 0;
  const chunk = new Uint8Array(65536).fill(7);
  event.respondWith(new Response(new ReadableStream({
    pull(c) { if (i++ === 40) c.close(); else c.enqueue(chunk); },
  })));
});
"""


async def test_response_stream_waits_for_acks(nursery: trio.Nursery) -> None:
    w = await start_worker(nursery, STREAMER)
    rid = 1
    reply = await w.start_request()
    reply.auto_ack = False  # type: ignore[attr-defined]
    await trio.sleep(0.3)
    assert len(reply.chunks) == p.WINDOW  # stalled at the window
    reply.auto_ack = True  # type: ignore[attr-defined]
    await w.write(p.Ack(rid, p.WINDOW))
    with trio.fail_after(10):
        await reply.done.wait()
    assert reply.ended and len(reply.body) == 40 * 65536
    assert set(reply.body) == {7}
    w.kill()


async def test_large_known_body_is_windowed(nursery: trio.Nursery) -> None:
    """A 1 MiB body known up front is sent by the host, also within the window."""
    w = await start_worker(
        nursery,
        "const big = new Uint8Array(1048576).map((_, i) => i % 251);"
        'addEventListener("fetch", e => e.respondWith(new Response(big)));',
    )
    reply = await w.start_request()
    reply.auto_ack = False  # type: ignore[attr-defined]
    await trio.sleep(0.3)
    assert len(reply.chunks) == p.WINDOW
    reply.auto_ack = True  # type: ignore[attr-defined]
    await w.write(p.Ack(1, p.WINDOW))
    with trio.fail_after(10):
        await reply.done.wait()
        await reply.settled.wait()
    assert reply.body == bytes(i % 251 for i in range(1048576))
    w.kill()


async def test_concurrent_requests(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """addEventListener("fetch", (e) => e.respondWith(new Promise((resolve) => {
             const u = new URL(e.request.url);
             setTimeout(() => resolve(new Response(u.pathname)), 50 - Number(u.pathname.slice(1)));
           })));""",
    )
    replies = [await w.start_request("GET", f"/{i}") for i in range(30)]
    with trio.fail_after(10):
        for r in replies:
            await r.done.wait()
            await r.settled.wait()
    assert [r.text() for r in replies] == [f"/{i}" for i in range(30)]
    w.kill()


async def test_client_abort_cancels_work(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """addEventListener("fetch", (e) => {
             if (e.request.url.endsWith("/ok")) return e.respondWith(new Response("ok"));
             e.request.signal.addEventListener("abort", () => console.log("aborted " + e.request.signal.reason.name));
             e.respondWith(new Response(new ReadableStream({
               pull(c) { return new Promise((r) => setTimeout(() => { c.enqueue(new Uint8Array(10)); r(); }, 20)); },
               cancel(reason) { console.log("cancelled " + reason.name); },
             })));
           });""",
    )
    reply = await w.start_request()
    with trio.fail_after(5):
        while len(reply.chunks) < 2:
            await reply.body_event.wait()
    await w.write(p.Abort(reply.rid, "client disconnected"))
    with trio.fail_after(5):
        await reply.settled.wait()
        while len([m for m in w.logs if "aborted" in m.message or "cancelled" in m.message]) < 2:
            await trio.sleep(0.01)
    messages = [m.message for m in w.logs]
    assert "aborted AbortError" in messages
    assert "cancelled AbortError" in messages
    assert not reply.ended
    # the instance keeps serving
    again = await w.request("GET", "/ok")
    assert again.text() == "ok"
    w.kill()


async def test_request_body_error_on_abort(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """addEventListener("fetch", (e) => e.respondWith((async () => {
             try { await e.request.arrayBuffer(); return new Response("read"); }
             catch (err) { console.log("body failed: " + err.name); return new Response("failed", { status: 499 }); }
           })()));""",
    )
    # a request that announced a body, but the client went away half way
    rid = w._next_rid
    r2 = Reply(rid)
    w.replies[rid] = r2
    w._next_rid = rid + 1
    await w.write(p.Request(rid, "POST", "http://fn.localhost/", [], True))
    await w.write(p.Chunk(rid, b"partial"))
    await w.write(p.Abort(rid, "client gone"))
    with trio.fail_after(5):
        await r2.settled.wait()
    assert any(m.message == "body failed: AbortError" for m in w.logs)
    w.kill()


async def test_unread_upload_is_drained(nursery: trio.Nursery) -> None:
    """A handler that ignores a large body: the rest is acked and dropped, nothing stalls."""
    w = await start_worker(
        nursery, 'addEventListener("fetch", (e) => e.respondWith(new Response("ignored")));'
    )
    body = bytes(3 * 1024 * 1024)
    reply = await w.request("POST", "/", body=body)
    assert reply.text() == "ignored"
    with trio.fail_after(10):
        while w.acks.get(reply.rid, 0) < len(body) // p.MAX_CHUNK:
            await w.ack_event.wait()
    again = await w.request("POST", "/", body=b"x" * 100)
    assert again.text() == "ignored"
    w.kill()
