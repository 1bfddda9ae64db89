"""Performs allowed subrequests with httpx (trio through anyio), streaming both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import attrs
import httpx
import trio

from kernel.channel import FetchRefused
from kernel.instances import resolve
from kernel.interfaces import OutboundRequest, OutboundResponse
from plugins.outbound_http.config import OutboundConfig
from plugins.outbound_http.policy import Policy

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}
DROP_RESPONSE = HOP_BY_HOP | {"content-encoding", "content-length"}
REDIRECTS = (301, 302, 303, 307, 308)


def pinned_url(url: str, address: str) -> tuple[str, str, str]:
    """``url`` with its host replaced by ``address``; also the Host header and SNI name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = f"[{address}]" if ":" in address else address
    netloc = f"{ip}:{parts.port}" if parts.port else ip
    host_header = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


CREDENTIALS = {"authorization", "cookie", "proxy-authorization"}
"""Request headers dropped when a redirect leaves the origin (the Fetch standard drops
``Authorization``; a cookie for one site must not reach another either)."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class Performer:
    """The ``OutboundPerformer`` of this plugin.

    Each function gets its own httpx client (its own connection pool) and at most
    ``max_concurrent_per_function`` subrequests in flight; the rest wait on a trio
    semaphore (cheap), not in httpx's pool. Every subrequest has a total deadline to
    its response head, so a stalled upstream holds only its own function's turns.
    """

    def __init__(self, config: OutboundConfig) -> None:
        self.config = config
        self.policy = Policy(config)
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._turns: dict[str, trio.Semaphore] = {}

    def client(self, function: str = "") -> httpx.AsyncClient:
        client = self._clients.get(function)
        if client is None:
            cfg = self.config
            timeout = httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)
            limits = httpx.Limits(
                max_connections=cfg.max_concurrent_per_function,
                max_keepalive_connections=min(8, cfg.max_concurrent_per_function),
            )
            client = httpx.AsyncClient(
                timeout=timeout, limits=limits, follow_redirects=False, trust_env=False
            )
            self._clients[function] = client
        return client

    def _turn(self, function: str) -> trio.Semaphore:
        turn = self._turns.get(function)
        if turn is None:
            turn = self._turns[function] = trio.Semaphore(self.config.max_concurrent_per_function)
        return turn

    def statistics(self) -> dict[str, Any]:
        """Subrequests in flight per function."""
        limit = self.config.max_concurrent_per_function
        return {name: limit - turn.value for name, turn in self._turns.items() if turn.value < limit}

    async def perform(self, request: OutboundRequest, body: AsyncIterator[bytes] | None) -> OutboundResponse:
        turn = self._turn(request.function)
        deadline = trio.current_time() + self.config.total_timeout
        try:
            with trio.fail_at(deadline):
                await turn.acquire()
        except trio.TooSlowError:
            raise FetchRefused(
                "TypeError",
                f"fetch: timed out waiting for a turn ({self.config.max_concurrent_per_function} subrequests "
                "of this function already in flight)",
            ) from None
        try:
            with trio.fail_at(deadline):
                response = await self._perform(request, body)
        except trio.TooSlowError:
            turn.release()
            host = urlsplit(request.url).hostname
            raise FetchRefused(
                "TypeError", f"fetch: {host} did not answer within {self.config.total_timeout:g} s"
            ) from None
        except BaseException:
            turn.release()
            raise
        return _release_on_close(response, turn)

    async def _perform(self, request: OutboundRequest, body: AsyncIterator[bytes] | None) -> OutboundResponse:
        url, method, addresses = request.url, request.method, request.addresses
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP and k.lower() != "host"]
        function = request.function
        for _ in range(self.config.max_redirects + 1):
            response = await self._send(method, url, headers, addresses, body, function)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                return self._wrap(response, url)
            if request.redirect == "manual":
                return self._wrap(response, url)
            await response.aclose()
            if request.redirect == "error":
                raise FetchRefused(
                    "TypeError", f'fetch: redirected to {location[:200]} with redirect: "error"'
                )
            if body is not None and response.status_code in (307, 308):
                raise FetchRefused("TypeError", "fetch: cannot follow a redirect with a streamed body")
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, body = "GET", None
            previous, url = url, urljoin(url, location)
            if _origin(url) != _origin(previous):
                headers = [(k, v) for k, v in headers if k.lower() not in CREDENTIALS]
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchRefused("TypeError", "fetch: redirect to a non-http(s) URL")
            try:
                addresses = await resolve(parts.hostname)
            except OSError as exc:
                raise FetchRefused("TypeError", f"fetch: cannot resolve {parts.hostname}") from exc
            reason = self.policy.check(parts.hostname, addresses)
            if reason:
                raise FetchRefused("TypeError", f"fetch refused after redirect: {reason}")
        raise FetchRefused("TypeError", f"fetch: more than {self.config.max_redirects} redirects")

    async def _send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        addresses: tuple[str, ...],
        body: AsyncIterator[bytes] | None,
        function: str = "",
    ) -> httpx.Response:
        target, host_header, sni = pinned_url(url, addresses[0])
        client = self.client(function)
        extensions: dict[str, Any] = {}
        if urlsplit(url).scheme == "https":
            extensions["sni_hostname"] = sni
        req = client.build_request(
            method, target, headers=[*headers, ("host", host_header)], content=body, extensions=extensions
        )
        try:
            return await client.send(req, stream=True)
        except httpx.TimeoutException as exc:
            raise FetchRefused("TypeError", f"fetch: {urlsplit(url).hostname} timed out") from exc
        except httpx.HTTPError as exc:
            raise FetchRefused("TypeError", f"fetch: {urlsplit(url).hostname}: {type(exc).__name__}") from exc

    def _wrap(self, response: httpx.Response, url: str) -> OutboundResponse:
        limit = self.config.max_response_size

        async def stream() -> AsyncIterator[bytes]:
            total = 0
            try:
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > limit:
                        raise FetchRefused("TypeError", f"fetch: response body over {limit} bytes")
                    yield chunk
            except httpx.HTTPError as exc:
                raise FetchRefused("TypeError", f"fetch: body failed: {type(exc).__name__}") from exc

        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in DROP_RESPONSE]
        return OutboundResponse(
            status=response.status_code,
            status_text=response.reason_phrase,
            headers=headers,
            url=url,
            body=stream(),
            close=response.aclose,
        )

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _release_on_close(response: OutboundResponse, turn: trio.Semaphore) -> OutboundResponse:
    """``response`` whose ``close`` (or the end of its body) gives the turn back, once."""
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            turn.release()

    inner_body, inner_close = response.body, response.close

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in inner_body:
                yield chunk
        finally:
            release()

    async def close() -> None:
        try:
            if inner_close is not None:
                await inner_close()
        finally:
            release()

    return attrs.evolve(response, body=body(), close=close)
