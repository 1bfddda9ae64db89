"""Several real daemons on loopback behind a real haproxy (deploy/haproxy/haproxy.cfg)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conftest
import httpx

if str(conftest.ROOT) not in sys.path:  # bench/ at the repository root
    sys.path.insert(0, str(conftest.ROOT))
from bench import haproxy

ROOT = conftest.ROOT
PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]
HELLO = """
export default { async fetch(req) {
  const ms = Number(new URL(req.url).searchParams.get("sleep") || 0);
  if (ms) await new Promise((r) => setTimeout(r, ms));
  return new Response("hello");
} };
"""


def haproxy_available() -> bool:
    return haproxy.available()


class PinnedDaemon(conftest.Daemon):
    """A test daemon on fixed loopback ports: restarted, it comes back where a balancer
    looks for it (port 0 would pick new ones)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.data_bind = f"127.0.0.1:{haproxy.free_port()}"

    def command(self) -> list[str]:
        argv = super().command()
        argv[argv.index("--data-bind") + 1] = self.data_bind
        return argv


def start_daemon(tmp: Path, extra: dict[str, Any] | None = None) -> conftest.Daemon:
    config = {
        "server": {"metrics_bind": f"127.0.0.1:{haproxy.free_port()}", "grace_period": 10.0},
        "plugins": {"scaler_reactive": {"breaker": {"enabled": False}}},
        **(extra or {}),
    }
    tmp.mkdir(parents=True, exist_ok=True)
    return PinnedDaemon(tmp, config, PLUGINS, {}).start()


def metrics_url(d: conftest.Daemon) -> str:
    return json.loads((d.state_dir / "daemon.json").read_text())["metrics_url"]


class Balancer(haproxy.Balancer):
    """haproxy with the example config, pointed at three test daemons."""

    def __init__(self, tmp: Path, daemons: list[conftest.Daemon], balance: str = "") -> None:
        servers = [
            (d.data_url.removeprefix("http://"), int(metrics_url(d).rsplit(":", 1)[1])) for d in daemons
        ]
        super().__init__(tmp, servers, balance)
        self.daemons = daemons

    def get(
        self, function: str, path: str = "/", timeout: float = 30, client: httpx.Client | None = None
    ) -> httpx.Response:
        headers = {"host": f"{function}.localhost"}
        if client is not None:
            return client.get(self.url + path, headers=headers, timeout=timeout)
        return httpx.get(self.url + path, headers=headers, timeout=timeout)


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
