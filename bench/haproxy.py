"""A real haproxy with the example config (deploy/haproxy/haproxy.cfg) in front of
three daemons on loopback: used by bench's ``cluster`` section and tests/cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
BINARY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def available() -> bool:
    return os.path.exists(BINARY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoadThreads:
    """Threads running :meth:`run` until the ``with`` block ends (``self.stop`` is set)."""

    def __init__(self, threads: int) -> None:
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, index: int) -> None:
        raise NotImplementedError

    def __enter__(self) -> LoadThreads:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


class Balancer:
    """haproxy pointed at three daemons: ``(data HOST:PORT, /readyz port)`` each.

    ``balance`` replaces the example's ``balance hdr(host)`` line (e.g. ``roundrobin``,
    to compare)."""

    def __init__(self, workdir: Path, servers: Sequence[tuple[str, int]], balance: str = "") -> None:
        assert len(servers) == 3, "the example config names three daemons"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.servers = list(servers)
        self.workdir = workdir
        self.log = workdir / "haproxy.log"
        self.config = CONFIG
        if balance:
            text = CONFIG.read_text().replace("balance hdr(host)", f"balance {balance}")
            self.config = workdir / "haproxy.cfg"
            self.config.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOSLATE_BIND": f"127.0.0.1:{self.port}"}
        for i, (data, check) in enumerate(self.servers, 1):
            env[f"NOSLATE_D{i}"] = data
            env[f"NOSLATE_D{i}_CHECK"] = str(check)
        return env

    def start(self, settle: float = 1.2) -> Balancer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [BINARY, "-db", "-f", str(self.config)],
                env=self.env(),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                break
            time.sleep(0.05)
        time.sleep(settle)  # health checks: every server up (rise 2, inter 500 ms)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
