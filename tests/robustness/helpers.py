"""Raw-socket helpers for the robustness tests (loopback only, every call bounded)."""

from __future__ import annotations

import socket
import time
from typing import Any

PY = {"runtime": "pytest"}

ECHO = """
def handle(req, body, host):
    data = b"".join(body)
    return 200, [("content-type", "text/plain"), ("x-len", str(len(data)))], [b"ok|", data]
"""


def addr(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def raw(url: str, data: bytes, *, timeout: float = 5.0, read: bool = True) -> bytes:
    """Send ``data`` on a fresh connection; return what comes back until EOF/timeout."""
    with socket.create_connection(addr(url), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            return b""
        if not read:
            return b""
        return read_all(s, timeout)


def read_all(s: socket.socket, timeout: float, idle: float = 0.5) -> bytes:
    """Read until EOF, ``timeout``, or ``idle`` seconds without data once some came."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait = deadline - time.monotonic()
        s.settimeout(max(0.05, min(wait, idle) if out else wait))
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            break
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def status_of(response: bytes) -> int:
    """The status code of the first response in ``response`` (0 when none)."""
    line = response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0


def healthy(daemon: Any, function: str = "echo") -> None:
    """The daemon is alive and serves an ordinary request and the control API."""
    assert daemon.proc.poll() is None, f"daemon died:\n{daemon.stderr()}"
    r = daemon.request(function, "/health", method="POST", body=b"ping", timeout=20)
    assert r.status_code == 200 and r.text == "ok|ping", r.text
    assert daemon.control("GET", "/healthz").status_code == 200
