"""Several real daemons on loopback behind a real haproxy (deploy/haproxy/haproxy.cfg)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conftest
import httpx

ROOT = conftest.ROOT
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]
HELLO = """
export default { async fetch(req) {
  const ms = Number(new URL(req.url).searchParams.get("sleep") || 0);
  if (ms) await new Promise((r) => setTimeout(r, ms));
  return new Response("hello");
} };
"""


def haproxy_available() -> bool:
    return os.path.exists(HAPROXY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(tmp: Path, extra: dict[str, Any] | None = None) -> conftest.Daemon:
    config = {
        "server": {"metrics_bind": "127.0.0.1:0", "grace_period": 10.0},
        "plugins": {"scaler_reactive": {"breaker": {"enabled": False}}},
        **(extra or {}),
    }
    tmp.mkdir(parents=True, exist_ok=True)
    return conftest.Daemon(tmp, config, PLUGINS, {}).start()


def metrics_url(d: conftest.Daemon) -> str:
    return json.loads((d.state_dir / "daemon.json").read_text())["metrics_url"]


class Balancer:
    """haproxy with the example config, pointed at three daemons."""

    def __init__(self, tmp: Path, daemons: list[conftest.Daemon]) -> None:
        assert len(daemons) == 3
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.daemons = daemons
        self.log = tmp / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOSLATE_BIND": f"127.0.0.1:{self.port}"}
        for i, d in enumerate(self.daemons, 1):
            env[f"NOSLATE_D{i}"] = d.data_url.removeprefix("http://")
            env[f"NOSLATE_D{i}_CHECK"] = metrics_url(d).rsplit(":", 1)[1]
        return env

    def start(self) -> Balancer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(HAPROXY_CFG)],
                env=self.env(),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                break
            time.sleep(0.05)
        time.sleep(1.2)  # health checks: every server up (rise 2, inter 500 ms)
        return self

    def get(
        self, function: str, path: str = "/", timeout: float = 30, client: httpx.Client | None = None
    ) -> httpx.Response:
        headers = {"host": f"{function}.localhost"}
        if client is not None:
            return client.get(self.url + path, headers=headers, timeout=timeout)
        return httpx.get(self.url + path, headers=headers, timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def instances_by_function(daemons: list[conftest.Daemon]) -> dict[str, list[int]]:
    """function -> the index of the daemon of each of its live instances."""
    out: dict[str, list[int]] = {}
    for i, d in enumerate(daemons):
        with contextlib.suppress(httpx.HTTPError):
            for inst in d.control("GET", "/v1/instances").json()["instances"]:
                if inst["state"] != "stopped":
                    out.setdefault(inst["function"], []).append(i)
    return out


@contextlib.contextmanager
def cluster(
    tmp: Path, functions: list[str], extra: dict[str, Any] | None = None
) -> Iterator[tuple[list[conftest.Daemon], Balancer]]:
    daemons = [start_daemon(tmp / f"d{i}", extra) for i in range(3)]
    balancer = None
    try:
        for d in daemons:
            for name in functions:
                d.deploy(name, HELLO, {"worker": {"replicaCountLimit": 5}}, filename="w.mjs")
        balancer = Balancer(tmp, daemons).start()
        yield daemons, balancer
    finally:
        if balancer is not None:
            balancer.stop()
        for d in daemons:
            try:
                d.stop(timeout=20)
            except Exception:
                d.kill9()
