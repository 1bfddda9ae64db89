"""Performs allowed subrequests with httpx (trio through anyio), streaming both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

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


class Performer:
    """The ``OutboundPerformer`` of this plugin (one httpx client per daemon)."""

    def __init__(self, config: OutboundConfig) -> None:
        self.config = config
        self.policy = Policy(config)
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        return self._client

    async def perform(self, request: OutboundRequest, body: AsyncIterator[bytes] | None) -> OutboundResponse:
        url, method, addresses = request.url, request.method, request.addresses
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP and k.lower() != "host"]
        for _ in range(self.config.max_redirects + 1):
            response = await self._send(method, url, headers, addresses, body)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                return self._wrap(response, url)
            await response.aclose()
            if body is not None and response.status_code in (307, 308):
                raise FetchRefused("TypeError", "fetch: cannot follow a redirect with a streamed body")
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, body = "GET", None
            url = urljoin(url, location)
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
    ) -> httpx.Response:
        target, host_header, sni = pinned_url(url, addresses[0])
        extensions: dict[str, Any] = {}
        if urlsplit(url).scheme == "https":
            extensions["sni_hostname"] = sni
        req = self.client().build_request(
            method, target, headers=[*headers, ("host", host_header)], content=body, extensions=extensions
        )
        try:
            return await self.client().send(req, stream=True)
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
        if self._client is not None:
            await self._client.aclose()
