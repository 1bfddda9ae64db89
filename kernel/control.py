"""The control API: a small JSON-over-HTTP ASGI app on the control listener.

``make_app(kernel)`` returns the ASGI callable the daemon serves with hypercorn.
Every route except ``/healthz`` and ``/readyz`` requires ``Authorization: Bearer
<token>`` when a token is configured (the daemon refuses to bind a non-loopback
address without one). Errors are JSON: ``{"error": "...", "errors": ["message @
$.path", ...]}``. The reference is ``docs/control-api.md`` and ``docs/openapi.json``.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kernel import control_views as views
from kernel.errors import DeployError, ProfileError, ValidationError
from kernel.interfaces import RegistryUnavailable
from kernel.profile import NAME_RE

log = logging.getLogger("noslate.control")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[["Request"], Awaitable["Response"]]

DEFAULT_MAX_CODE_BYTES = 8 * 1024 * 1024
"""Code size limit used when the kernel's config names none."""


class HTTPError(Exception):
    """Turned into a JSON error response by the app."""

    def __init__(self, status: int, error: str, errors: list[str] | None = None) -> None:
        self.status = status
        self.error = error
        self.errors = errors or []
        super().__init__(error)


class Request:
    """What a handler sees: method, path parameters, query and the (bounded) body."""

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str]) -> None:
        self.scope = scope
        self.receive = receive
        self.params = params
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: dict[str, str] = {}
        for part in scope.get("query_string", b"").decode("latin-1").split("&"):
            if part:
                key, _, value = part.partition("=")
                self.query[key] = value
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

    async def body(self, limit: int) -> bytes:
        """Read the whole body; 413 once it grows past ``limit`` bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "client disconnected before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"request body is larger than {limit} bytes", ["too large @ $"])
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def json(self, limit: int) -> Any:
        """The body parsed as JSON; 400 with the position when it is malformed."""
        raw = await self.body(limit)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HTTPError(400, f"malformed JSON body: {exc}", [f"malformed JSON: {exc} @ $"]) from exc


class Response:
    """A complete response (JSON or text) or a streaming one (``stream`` set)."""

    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        *,
        content_type: str = "application/json",
        text: bytes | None = None,
        stream: Callable[[Send], Awaitable[None]] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.content_type = content_type
        self.body = text if text is not None else json.dumps(body, indent=None).encode() + b"\n"
        self.stream = stream
        self.headers = headers or []


def error_response(status: int, error: str, errors: list[str] | None = None) -> Response:
    return Response(status, {"error": error, "errors": errors or []})


# ---- routing ----------------------------------------------------------------------------

ROUTES: list[tuple[str, str, str]] = []
"""(method, OpenAPI path template, handler name): the app's whole surface."""
PUBLIC = {"/healthz", "/readyz"}


def route(method: str, template: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES.append((method, template, fn.__name__))
        return fn

    return register


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


class ControlApp:
    """The ASGI application (one per daemon)."""

    def __init__(self, kernel: Any, token: str | None = None, only: frozenset[str] | None = None) -> None:
        self.kernel = kernel
        self.token = token if token is not None else _configured_token(kernel)
        self.started = time.time()
        self._routes = [
            (m, _compile(t), t, getattr(self, h)) for m, t, h in ROUTES if only is None or t in only
        ]

    # -- ASGI entry ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            response = await self._dispatch(scope, receive)
        except HTTPError as exc:
            response = error_response(exc.status, exc.error, exc.errors)
        except Exception as exc:  # a bug: log it, answer 500 without a traceback
            log.exception("control API %s %s failed", scope.get("method"), scope.get("path"))
            response = error_response(500, f"internal error: {type(exc).__name__}: {exc}")
        await self._send(response, send)

    async def _dispatch(self, scope: Scope, receive: Receive) -> Response:
        path, method = scope["path"], scope["method"]
        allowed: list[str] = []
        for r_method, pattern, template, handler in self._routes:
            match = pattern.match(path)
            if not match:
                continue
            if r_method != method and not (method == "HEAD" and r_method == "GET"):
                allowed.append(r_method)
                continue
            request = Request(scope, receive, match.groupdict())
            if template not in PUBLIC:
                self._authorize(request)
            return await handler(request)
        if allowed:
            raise HTTPError(405, f"method {method} not allowed on {path}; use {', '.join(allowed)}")
        raise HTTPError(404, f"no such route: {method} {path}")

    def _authorize(self, request: Request) -> None:
        if not self.token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPError(
                401,
                "missing bearer token: send 'Authorization: Bearer <token>' "
                "(noslate --token or NOSLATE_CONTROL_TOKEN)",
            )
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise HTTPError(
                401,
                "wrong bearer token: use the daemon's token ([control] token or its "
                "NOSLATE_CONTROL_TOKEN) with noslate --token or NOSLATE_CONTROL_TOKEN",
            )

    async def _send(self, response: Response, send: Send) -> None:
        headers = [(b"content-type", response.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in response.headers]
        if response.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="noslate"'))
        if response.stream is None:
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if response.stream is None:
            await send({"type": "http.response.body", "body": response.body})
            return
        await response.stream(send)
        await send({"type": "http.response.body", "body": b""})

    # -- probes and metrics ---------------------------------------------------------------

    @route("GET", "/healthz")
    async def healthz(self, request: Request) -> Response:
        return Response(200, {"status": "ok"})

    @route("GET", "/readyz")
    async def readyz(self, request: Request) -> Response:
        if getattr(self.kernel, "draining", False):
            return error_response(503, "draining: the daemon is shutting down")
        if getattr(self.kernel, "leaving", False):
            return error_response(503, "leaving: noslate drain was called (the daemon still serves)")
        ready = getattr(self.kernel, "ready", None)
        level = self.kernel.saturation() if callable(ready) else 0.0
        if callable(ready) and not ready(level):
            return error_response(
                503, f"saturated: {level:.2f} (ready again below [server] ready_saturation_low)"
            )
        return Response(200, {"status": "ready"})

    @route("POST", "/v1/drain")
    async def drain(self, request: Request) -> Response:
        self.kernel.leaving = True
        return Response(200, {"status": "not ready: balancers should send new requests elsewhere"})

    @route("DELETE", "/v1/drain")
    async def undrain(self, request: Request) -> Response:
        self.kernel.leaving = False
        return Response(200, {"status": "ready" if self.kernel.ready() else "not ready"})

    @route("GET", "/metrics")
    async def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = views.metrics_registry(self.kernel)
        return Response(200, content_type=CONTENT_TYPE_LATEST, text=generate_latest(registry))

    # -- functions ------------------------------------------------------------------------

    @route("GET", "/v1/functions")
    async def list_functions(self, request: Request) -> Response:
        return Response(200, {"functions": views.list_functions(self.kernel)})

    @route("GET", "/v1/functions/{name}")
    async def get_function(self, request: Request) -> Response:
        name = _name(request)
        data = views.get_function(self.kernel, name)
        if data is None:
            raise _unknown(name)
        return Response(200, data)

    @route("PUT", "/v1/functions/{name}")
    async def put_function(self, request: Request) -> Response:
        name = _name(request)
        limit = views.max_code_bytes(self.kernel) or DEFAULT_MAX_CODE_BYTES
        body = await request.json(limit * 2 + 1024 * 1024)  # JSON escapes may double the text
        code, filename, profile = _deploy_body(body, name)
        size = len(code.encode())
        if size > limit:
            raise HTTPError(
                413,
                f"code is {size} bytes; the limit is {limit} ([server] max_code_size)",
                [f"code is {size} bytes, over the limit of {limit} @ $.code"],
            )
        existed = views.get_function(self.kernel, name) is not None
        try:
            result = await self.kernel.deploy(name, code.encode(), filename, profile)
        except ProfileError as exc:
            raise HTTPError(422, "invalid function profile", _prefixed(exc.errors, "$.profile")) from exc
        except ValidationError as exc:
            raise HTTPError(422, f"invalid {exc.what}", _prefixed(exc.errors, "$.profile")) from exc
        except RegistryUnavailable as exc:
            raise HTTPError(503, str(exc), [f"{exc} @ $"]) from exc
        except DeployError as exc:
            status = 413 if re.search(r"\bcode is \d+ bytes\b", str(exc)) else 422
            raise HTTPError(status, f"deploy failed: {exc}", [f"{exc} @ $.code"]) from exc
        data = views.get_function(self.kernel, name) or views.describe_version(result)
        return Response(200 if existed else 201, data)

    @route("DELETE", "/v1/functions/{name}")
    async def delete_function(self, request: Request) -> Response:
        name = _name(request)
        if views.get_function(self.kernel, name) is None:
            raise _unknown(name)
        try:
            await self.kernel.delete(name)
        except RegistryUnavailable as exc:
            raise HTTPError(503, str(exc), [f"{exc} @ $"]) from exc
        return Response(200, {"deleted": name})

    @route("GET", "/v1/functions/{name}/logs")
    async def function_logs(self, request: Request) -> Response:
        name = _name(request)
        if views.get_function(self.kernel, name) is None:
            raise _unknown(name)
        limit = _int_query(request, "limit", 200)
        lines = views.recent_logs(self.kernel, name, limit)
        if request.query.get("follow") not in ("1", "true", "yes"):
            return Response(200, {"function": name, "lines": lines})

        async def stream(send: Send) -> None:
            for line in lines:
                await send({"type": "http.response.body", "body": _jsonl(line), "more_body": True})
            async for line in views.follow_logs(self.kernel, name):
                await send({"type": "http.response.body", "body": _jsonl(line), "more_body": True})

        return Response(200, content_type="application/x-ndjson", stream=stream)

    # -- instances, status, plugins, kv ------------------------------------------------------

    @route("GET", "/v1/instances")
    async def list_instances(self, request: Request) -> Response:
        function = request.query.get("function") or None
        return Response(200, {"instances": views.list_instances(self.kernel, function)})

    @route("GET", "/v1/status")
    async def status(self, request: Request) -> Response:
        return Response(200, views.status(self.kernel, self.started))

    @route("GET", "/v1/plugins")
    async def plugins(self, request: Request) -> Response:
        return Response(200, {"plugins": views.plugins(self.kernel)})

    @route("GET", "/v1/kv")
    async def kv(self, request: Request) -> Response:
        namespace = request.query.get("namespace") or None
        values = request.query.get("values") in ("1", "true", "yes")
        data = views.kv_inspect(self.kernel, namespace, values)
        if data is None:
            raise HTTPError(404, "no KV backend is active (enable a plugin providing noslate_kv_backends)")
        return Response(200, data)


SCRAPE_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})


def make_metrics_app(kernel: Any) -> ControlApp:
    """The ``[server] metrics_bind`` listener's app: /metrics, /healthz, /readyz, no token."""
    return ControlApp(kernel, token="", only=SCRAPE_ROUTES)


def make_app(kernel: Any, token: str | None = None) -> ControlApp:
    """The control API's ASGI app for ``kernel``.

    :param token: the bearer token; None reads it from the kernel's config
        (``[control] token``) or ``NOSLATE_CONTROL_TOKEN``; empty disables auth.
    """
    return ControlApp(kernel, token)


# ---- helpers -----------------------------------------------------------------------------


def _configured_token(kernel: Any) -> str | None:
    import os

    for getter in (
        lambda: kernel.control_token,
        lambda: kernel.config.control.token,
    ):
        try:
            value = getter()
        except AttributeError:
            continue
        if value:
            return str(value)
    return os.environ.get("NOSLATE_CONTROL_TOKEN") or None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _name(request: Request) -> str:
    name = request.params["name"]
    if not NAME_RE.match(name):
        raise HTTPError(
            400,
            f"invalid function name {name!r}",
            [
                "name must be a DNS label: 1 to 63 of [a-z0-9-], not starting or ending "
                f"with '-'; got {name!r} @ $.name"
            ],
        )
    return name


def _unknown(name: str) -> HTTPError:
    return HTTPError(404, f"unknown function {name!r}", [f"no function named {name!r} @ $.name"])


def _int_query(request: Request, key: str, default: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(
            400, f"query parameter {key} must be an integer", [f"not an integer @ $.{key}"]
        ) from None
    if value < 0:
        raise HTTPError(400, f"query parameter {key} must be >= 0", [f"must be >= 0 @ $.{key}"])
    return value


def _deploy_body(body: Any, name: str) -> tuple[str, str, dict[str, Any]]:
    """Check the PUT body's shape; return code, filename and the profile data."""
    errors: list[str] = []
    if not isinstance(body, dict):
        raise HTTPError(
            400, "request body must be a JSON object", [f"expected object, got {type(body).__name__} @ $"]
        )
    extra = sorted(set(body) - {"profile", "code", "filename", "env"})
    if extra:
        errors.append(f"unknown field(s): {', '.join(extra)} @ $")
    code = body.get("code")
    if not isinstance(code, str):
        errors.append(
            "required field missing @ $.code"
            if code is None
            else f"expected string, got {type(code).__name__} @ $.code"
        )
    filename = body.get("filename", "index.js")
    if not isinstance(filename, str) or not filename or "/" in filename or filename.startswith("."):
        errors.append("filename must be a plain file name such as index.js or worker.ts @ $.filename")
    profile = body.get("profile", {})
    if profile is None:
        profile = {}
    if not isinstance(profile, dict):
        errors.append(f"expected object, got {type(profile).__name__} @ $.profile")
    env = body.get("env") or {}
    if not isinstance(env, dict):
        errors.append(f"expected object of strings, got {type(env).__name__} @ $.env")
    else:
        errors += [
            f"expected string, got {type(v).__name__} @ $.env.{k}"
            for k, v in env.items()
            if not isinstance(v, str)
        ]
    if errors:
        raise HTTPError(400, "invalid deploy request", errors)
    profile = dict(profile)
    if "name" in profile and profile["name"] != name:
        raise HTTPError(
            400,
            "profile name differs from the URL",
            [f"profile names {profile['name']!r} but the URL names {name!r} @ $.profile.name"],
        )
    profile["name"] = name
    if env:
        environments = profile.get("environments") or []
        if not isinstance(environments, list):
            raise HTTPError(400, "invalid deploy request", ["expected array @ $.profile.environments"])
        merged = {e.get("key"): e.get("value") for e in environments if isinstance(e, dict)}
        merged.update(env)
        profile["environments"] = [{"key": k, "value": v} for k, v in merged.items()]
    return code, filename, profile


def _prefixed(errors: list[str], prefix: str) -> list[str]:
    """Re-root ``message @ $.x`` lines under ``prefix`` (the profile inside the body)."""
    out = []
    for line in errors:
        message, sep, path = line.rpartition(" @ ")
        if sep and path.startswith("$"):
            out.append(f"{message} @ {prefix}{path[1:]}")
        else:
            out.append(f"{line} @ {prefix}")
    return out


def _jsonl(line: Any) -> bytes:
    return json.dumps(line).encode() + b"\n"


__all__ = ["ROUTES", "ControlApp", "HTTPError", "make_app"]
