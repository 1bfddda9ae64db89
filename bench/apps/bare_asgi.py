"""A bare ASGI app: the ceiling of a trio + hypercorn front door (no kernel, no runtime).

``/`` answers ``Hello, world!``; ``/ssr`` renders the same ~50 KB page as the JS workloads.
Run: ``hypercorn --worker-class trio -w 1 bench.apps.bare_asgi:app``.
"""

from __future__ import annotations

import html
from typing import Any

from bench.workloads import HELLO, SSR_ROWS


def render() -> bytes:
    rows = [
        f"<tr><td>{i}</td><td>{html.escape(f'Item <{i}> & ' + chr(39) + 'co' + chr(39))}</td>"
        f'<td>{i * 1.5:.2f}</td><td><a href="/item/{i}">details</a></td></tr>'
        for i in range(SSR_ROWS)
    ]
    page = (
        "<!doctype html><html><head><title>Catalogue</title></head><body><h1>Catalogue</h1>"
        f"<table>{''.join(rows)}</table></body></html>"
    )
    return page.encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/ssr":
        body, ctype = render(), b"text/html"
    else:
        body, ctype = HELLO.encode(), b"text/plain;charset=UTF-8"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
