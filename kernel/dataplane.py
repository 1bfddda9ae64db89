"""The data plane: an ASGI app that routes each request to a worker instance.

route (``noslate_route``) -> admit (``noslate_admit``) -> ``scheduler.acquire`` ->
stream the request body to the instance while awaiting the response head -> stream
the response body back -> ``lease.release()`` once the body is fully sent. A worker
stream that fails midway aborts the client connection (no truncated "complete" body).
Error bodies are JSON ``{"error": ..., "function": ...}`` and never show host paths.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from typing import Any

import trio

from kernel.channel import Exchange, WorkerFailed
from kernel.interfaces import InboundRequest, RejectedError, Rejection

log = logging.getLogger("noslate.dataplane")
_NO_BODY_METHODS = ("GET", "HEAD", "OPTIONS", "DELETE")
_NO_CONTENT = (204, 304)
QUICK_HEAD = 0.05
"""Seconds a bodiless request waits for the head before a task watches the client."""

UNREAD = object()
"""``_exchange`` result: the instance died before it could read the request (see ``_quick``)."""


def _died_unread(inst: Any) -> bool:
    """The instance's channel closed before its Hello: it never read a frame."""
    return inst.channel.hello is None and inst.channel.closed.is_set()


def _latin1(value: bytes) -> str:
    return value.decode("latin-1")


def _encode_header(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def inbound_request(scope: dict[str, Any]) -> tuple[InboundRequest, str]:
    """The hooks' view of an ASGI scope, plus the raw Host header value."""
    headers = [(_latin1(k), _latin1(v)) for k, v in scope["headers"]]
    host_header = next((v for k, v in headers if k.lower() == "host"), "")
    if not host_header and scope.get("server"):
        host_header = "{}:{}".format(*tuple(scope["server"][:2]))
    host = host_header.lower()
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    else:
        host = host.rsplit(":", 1)[0] if ":" in host else host
    target = _latin1(scope.get("raw_path") or scope["path"].encode())
    if scope.get("query_string"):
        target += "?" + _latin1(scope["query_string"])
    client = scope.get("client") or ("", 0)
    req = InboundRequest(
        method=scope["method"],
        target=target,
        headers=headers,
        host=host,
        scheme=scope.get("scheme", "http"),
        client=str(client[0]),
    )
    return req, host_header


class DataPlane:
    """The data-plane ASGI application of one kernel."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.in_flight = 0
        """HTTP requests being handled (the drain waits for 0)."""
        self.idle_waiters: list[trio.Event] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
        start = trio.current_time()
        function, status = "", 500
        started = False
        self.in_flight += 1

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            function, status = await self._handle(scope, receive, tracked_send)
        except Exception:
            log.exception("data plane request failed")
            if not started:
                status = await send_json(send, 500, {"error": "internal error", "function": function or None})
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.idle_waiters:
                for event in self.idle_waiters:
                    event.set()
                self.idle_waiters.clear()
            self._count(function, status, trio.current_time() - start)

    async def wait_idle(self) -> None:
        """Return once no request is in flight (at once when none is)."""
        if self.in_flight == 0:
            return
        event = trio.Event()
        self.idle_waiters.append(event)
        await event.wait()

    def _count(self, function: str, status: int, seconds: float) -> None:
        """Request metrics (plain counters, exported at scrape time: ``kernel.metrics``)."""
        self.kernel.metrics.requests.record(function, status, seconds)

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any) -> tuple[str, int]:
        kernel = self.kernel
        request, host_header = inbound_request(scope)
        if kernel.draining:
            return "", await send_json(
                send,
                503,
                {"error": "the daemon is shutting down", "function": None},
                [("connection", "close"), ("retry-after", "1")],
            )
        if _framing_conflict(scope):
            return "", await send_json(
                send,
                400,
                {
                    "error": "the request has both Content-Length and Transfer-Encoding; send one "
                    "(a proxy that reads the other could see different requests)",
                    "function": None,
                },
                [("connection", "close")],
            )
        route = kernel.hooks.route(request=request)
        if route is None:
            return "", await send_json(
                send, 404, {"error": "no function matches this request (Host header)", "function": None}
            )
        name = route.function
        version = kernel.current_version(name)
        if version is None:
            return "", await send_json(send, 404, {"error": "function not found", "function": name})
        rejection = kernel.hooks.admit(request=request, function=version.profile)
        if rejection is not None:
            return name, await self._reject(send, name, rejection)
        length = request.header("content-length")
        if length and length.isdigit() and int(length) > kernel.config.server.max_request_body:
            return name, await send_json(send, 413, {"error": "request body too large", "function": name})
        for attempt in range(2):
            try:
                lease = await kernel.scheduler.acquire(name)
            except RejectedError as exc:
                return name, await self._reject(send, name, exc.rejection)
            waited = getattr(lease, "waited", None)
            if waited is not None:
                kernel.metrics.requests.waited(name, waited)
            failed = True
            try:
                result = await self._exchange(
                    lease.instance, request, host_header, route.target, name, receive, send, attempt == 0
                )
                if result is UNREAD:
                    continue  # the lease is released as failed; the next instance gets it
                status, failed = result
                return name, status
            finally:
                lease.release(failed=failed)
        raise AssertionError("unreachable: the second attempt never returns UNREAD")

    async def _reject(self, send: Any, name: str, rejection: Rejection) -> int:
        self.kernel.metrics.rejections.labels(name, rejection.reason).inc()
        headers = []
        if rejection.retry_after is not None:
            headers.append(("retry-after", str(max(1, math.ceil(rejection.retry_after)))))
        body = {"error": rejection.message, "reason": rejection.reason, "function": name}
        return await send_json(send, rejection.status, body, headers)

    async def _exchange(
        self,
        inst: Any,
        request: InboundRequest,
        host_header: str,
        target: str,
        name: str,
        receive: Any,
        send: Any,
        may_retry: bool = False,
    ) -> tuple[int, bool] | object:
        """Run one request on ``inst``; return (status sent, failed), or ``UNREAD`` (only
        when ``may_retry``) if the instance died before it could have read the request."""
        length = chunked = None
        for k, v in request.headers:
            lk = k.lower()
            if lk == "content-length":
                length = length if length is not None else v
            elif lk == "transfer-encoding":
                chunked = chunked if chunked is not None else v
        has_body = request.method not in _NO_BODY_METHODS or chunked is not None
        if length is not None:
            has_body = length != "0"
        url = f"{request.scheme}://{host_header}{target}"
        try:
            ex = await inst.channel.request(request.method, url, request.headers, has_body)
        except WorkerFailed as exc:
            return await send_json(send, exc.status, {"error": exc.message, "function": name}), True
        if not has_body:
            quick = await self._quick(ex, inst, request.method, name, send, may_retry)
            if quick is not None:
                return quick
        aborted = False
        slow: _SlowUpload | None = None
        done = False  # the worker finished the response: a later disconnect aborts nothing
        failure: WorkerFailed | None = None
        status, failed = 499, True
        async with trio.open_nursery() as nursery:

            async def client_side() -> None:
                nonlocal aborted, slow
                try:
                    uploaded = await self._upload(ex, receive, has_body)
                except _SlowUpload as exc:
                    slow, uploaded = exc, False
                if not uploaded and not done:
                    aborted = True
                    await ex.abort("request body read timeout" if slow else "client disconnected")
                    nursery.cancel_scope.cancel()

            nursery.start_soon(client_side)
            try:
                head = await self._response_head(ex, inst)
            except WorkerFailed as exc:
                failure = exc
            else:
                status = head.status
                whole = ex.whole_body()
                try:
                    if whole is not None:
                        done = True
                        await _send_whole(send, request.method, head, whole)
                    else:
                        headers = [(_encode_header(k), _encode_header(v)) for k, v in head.headers]
                        await send({"type": "http.response.start", "status": status, "headers": headers})
                        await self._stream_body(ex, inst, send)
                        done = True
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    failed = False
                    inst.served += 1
                except WorkerFailed as exc:
                    # Leave without the final empty body: hypercorn closes the connection.
                    inst.log("error", f"response stream failed midway: {exc.message}")
                except Exception:
                    await ex.abort("client disconnected")
            # Never send from inside this scope once it is cancelled.
            nursery.cancel_scope.cancel()
        ex.close()
        if slow is not None and not done:
            message = f"the request body sent no data for {slow.seconds:g} s ([server] body_read_timeout)"
            inst.log("warning", f"request dropped: {message}")
            self.kernel.metrics.rejections.labels(name, "body_read_timeout").inc()
            if status == 499:  # no response started: the client may still read one
                with contextlib.suppress(Exception):
                    await send_json(
                        send, 408, {"error": message, "function": name}, [("connection", "close")]
                    )
                return 408, True
            return status, True
        if failure is not None and not aborted and not has_body and may_retry and _died_unread(inst):
            return UNREAD
        if failure is not None and not aborted:
            code = failure.status if 500 <= failure.status < 600 else 502
            return await send_json(send, code, {"error": failure.message, "function": name}), True
        return status, failed

    async def _response_head(self, ex: Exchange, inst: Any) -> Any:
        """The worker's response head within ``[server] response_timeout`` (else 504)."""
        timeout = self.kernel.config.server.response_timeout
        with trio.move_on_after(timeout if timeout > 0 else math.inf) as scope:
            return await ex.response()
        assert scope.cancelled_caught
        message = f"the function did not respond within {timeout:g} s ([server] response_timeout)"
        inst.log("error", f"request dropped: {message}; the instance takes no new requests and is replaced")
        self.kernel.metrics.rejections.labels(inst.function, "response_timeout").inc()
        await ex.abort("response timeout")
        retire = getattr(inst, "retire", None)
        if callable(retire):
            retire("response-timeout")
        raise WorkerFailed(504, message)

    async def _stream_body(self, ex: Exchange, inst: Any, send: Any) -> None:
        """Relay the streamed body; a gap over ``[server] body_idle_timeout`` between
        chunks from the worker aborts the request (raises WorkerFailed, so the client
        connection is aborted, never ended as if complete)."""
        idle = self.kernel.config.server.body_idle_timeout
        async with contextlib.aclosing(ex.body()) as body:
            chunks = aiter(body)
            while True:
                with trio.move_on_after(idle if idle > 0 else math.inf) as scope:
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                if scope.cancelled_caught:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        message = f"the function sent no body data for {idle:g} s ([server] body_idle_timeout)"
        self.kernel.metrics.rejections.labels(inst.function, "body_idle_timeout").inc()
        await ex.abort("body idle timeout")
        raise WorkerFailed(504, message)

    async def _quick(
        self, ex: Exchange, inst: Any, method: str, name: str, send: Any, may_retry: bool = False
    ) -> tuple[int, bool] | object | None:
        """Answer without a client-watching task when the worker answers at once.

        For a request without a body, wait up to QUICK_HEAD for the head. If it came
        with its whole body (or the worker failed first), send it and return (status,
        failed). Otherwise return None: the caller watches the client from now on (a
        disconnect is then noticed at most QUICK_HEAD late). ``UNREAD`` (when
        ``may_retry``): the instance died without its Hello, i.e. before reading any
        frame (an adopted spare gets its request that early), so nothing ran and the
        request can go to another instance.
        """
        with trio.move_on_after(QUICK_HEAD):
            with contextlib.suppress(WorkerFailed):
                await ex.response()
        if ex.head is None and ex.error is None:
            return None
        if ex.head is None:
            failure = ex.error or WorkerFailed(502, "worker sent no response")
            ex.close()
            if may_retry and _died_unread(inst):
                log.info("%s died before reading its request: retrying on another instance", inst.id)
                return UNREAD
            code = failure.status if 500 <= failure.status < 600 else 502
            return await send_json(send, code, {"error": failure.message, "function": name}), True
        whole = ex.whole_body()
        if whole is None:
            return None
        head = ex.head
        ex.close()
        try:
            await _send_whole(send, method, head, whole)
        except Exception:  # the client is gone; the worker already finished
            return 499, True
        inst.served += 1
        return head.status, False

    async def _upload(self, ex: Exchange, receive: Any, has_body: bool) -> bool:
        """Stream the request body to the worker, then watch for a disconnect.

        Returns False when the client disconnected.
        """
        limit = self.kernel.config.server.max_request_body
        read_timeout = self.kernel.config.server.body_read_timeout
        total = 0
        try:
            while True:
                msg = None
                with trio.move_on_after(read_timeout if read_timeout > 0 and has_body else math.inf):
                    msg = await receive()
                if msg is None:
                    raise _SlowUpload(read_timeout)
                if msg["type"] == "http.disconnect":
                    return False
                body = msg.get("body", b"")
                total += len(body)
                if total > limit:
                    await ex.abort("request body too large")
                    return True
                if body and has_body:
                    await ex.send_body(body)
                if not msg.get("more_body", False):
                    break
            if has_body:
                await ex.end_body()
        except WorkerFailed:
            pass
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return False


async def _send_whole(send: Any, method: str, head: Any, body: bytes) -> None:
    """A response whose body is all here: one body message, with a Content-Length
    (what a plain ASGI app sends) instead of chunked framing."""
    headers = [(_encode_header(k), _encode_header(v)) for k, v in head.headers]
    if _can_add_length(method, head.status, head.headers):
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": head.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _can_add_length(method: str, status: int, headers: list[tuple[str, str]]) -> bool:
    """Whether a complete body may be framed with a Content-Length we add."""
    if method == "HEAD" or status < 200 or status in _NO_CONTENT:
        return False
    for k, _v in headers:
        lk = k.lower()
        if lk == "content-length" or lk == "transfer-encoding":
            return False
    return True


class _SlowUpload(Exception):
    """The client sent no request body data for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _framing_conflict(scope: dict[str, Any]) -> bool:
    """Whether the request names both Content-Length and Transfer-Encoding."""
    names = {k.lower() for k, _ in scope.get("headers", ())}
    return b"content-length" in names and b"transfer-encoding" in names


async def send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[str, str]] = ()) -> int:
    """Send a complete JSON response; returns ``status``."""
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data, "more_body": False})
    return status
