"""The CLI's HTTP client of the control API (sync httpx; TCP or a Unix socket)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

DEFAULT_CONTROL = "127.0.0.1:8081"
DEFAULT_DATA = "127.0.0.1:8080"


class CLIError(Exception):
    """A failure to report as one line (plus detail lines) with an exit code."""

    def __init__(self, message: str, code: int = 1, details: list[str] | None = None) -> None:
        self.message = message
        self.code = code
        self.details = details or []
        super().__init__(message)


def _from_config(config: str | None) -> Any:
    if not config:
        return None
    from kernel import cli_local

    return cli_local.load_config(config)


def control_settings(control: str | None, token: str | None, config: str | None) -> tuple[str, str]:
    """Resolve the control address and token: flags, then env, then the config file."""
    cfg = None
    if not control:
        control = os.environ.get("NOSLATE_CONTROL") or None
    if token is None:
        token = os.environ.get("NOSLATE_CONTROL_TOKEN") or None
    if control is None or token is None:
        cfg = _from_config(config)
    if control is None:
        control = getattr(getattr(cfg, "server", None), "control_bind", None) or DEFAULT_CONTROL
    if token is None:
        token = getattr(getattr(cfg, "control", None), "token", None) or ""
    return control, token


def data_address(flag: str | None, config: str | None) -> str:
    """The data plane's HOST:PORT: flag, env NOSLATE_DATA, the config, or the default."""
    addr = flag or os.environ.get("NOSLATE_DATA")
    if not addr:
        cfg = _from_config(config)
        addr = getattr(getattr(cfg, "server", None), "data_bind", None) or DEFAULT_DATA
    addr = addr.removeprefix("http://").rstrip("/")
    host, _, port = addr.rpartition(":")
    if host in ("0.0.0.0", "", "[::]", "::"):
        addr = f"127.0.0.1:{port}"
    return addr


class Client:
    """Talks JSON to the control API; turns every failure into a :class:`CLIError`."""

    def __init__(self, control: str, token: str, timeout: float = 60.0) -> None:
        self.control = control
        transport = None
        if control.startswith("unix:"):
            transport = httpx.HTTPTransport(uds=control[len("unix:") :])
            base = "http://noslate"
        elif control.startswith(("http://", "https://")):
            base = control.rstrip("/")
        else:
            host, _, port = control.rpartition(":")
            if host in ("0.0.0.0", "", "[::]", "::"):
                host = "127.0.0.1"
            base = f"http://{host}:{port}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=base,
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    @classmethod
    def from_settings(cls, control: str | None, token: str | None, config: str | None) -> Client:
        return cls(*control_settings(control, token, config))

    def _fail(self, exc: httpx.HTTPError) -> CLIError:
        return CLIError(
            f"cannot reach the control API at {self.control}: {exc or type(exc).__name__} "
            "(is `noslate serve` running? set --control or NOSLATE_CONTROL)"
        )

    @staticmethod
    def _error(resp: httpx.Response) -> CLIError:
        try:
            data = resp.json()
            message = data.get("error") or resp.reason_phrase
            details = [str(e) for e in data.get("errors") or []]
        except (ValueError, AttributeError):
            message, details = resp.text.strip() or resp.reason_phrase, []
        return CLIError(f"{message} (HTTP {resp.status_code})", 1, details)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return (status, parsed JSON) or raise CLIError for >= 400."""
        try:
            content = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if content is not None else {}
            resp = self.http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise self._fail(exc) from exc
        if resp.status_code >= 400:
            raise self._error(resp)
        try:
            return resp.status_code, resp.json()
        except ValueError as exc:
            raise CLIError(f"the control API sent a non-JSON answer to {method} {path}") from exc

    def data_plane(self) -> str | None:
        """The data plane address the daemon reports, or None when it cannot be asked."""
        try:
            resp = self.http.get("/v1/status", timeout=5)
            return str(resp.json().get("data_plane") or "") or None if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None

    def stream_lines(self, path: str) -> Iterator[Any]:
        """Yield JSON lines of a streaming response until the server closes it."""
        try:
            with self.http.stream("GET", path, timeout=httpx.Timeout(None, connect=5.0)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(resp)
                for line in resp.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise self._fail(exc) from exc
