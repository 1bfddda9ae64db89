from __future__ import annotations

import trio

from .harness import start_worker


async def test_sw_hello(nursery: trio.Nursery) -> None:
    w = await start_worker(nursery, 'addEventListener("fetch", e => e.respondWith(new Response("hello")))')
    r = await w.request()
    assert r.status == 200
    assert r.text() == "hello"
    assert r.headers["content-type"] == "text/plain;charset=UTF-8"
    assert await w.shutdown() == 0
