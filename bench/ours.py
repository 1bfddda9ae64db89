"""Drive our daemon: ``noslate serve`` on port-0 loopback listeners, deploy, call, inspect.

Starts the daemon exactly as an operator would (``.venv/bin/noslate serve --config X
--state-dir D --data-bind 127.0.0.1:0 --control-bind 127.0.0.1:0``), reads the bound
addresses from ``D/daemon.json`` and deploys through ``PUT /v1/functions/{name}``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from bench.common import ROOT, VENV_BIN, KeepAlive, Skip, clean_env, kill_group, spawn

BASE_PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]
ISOLATION_PLUGINS = ["isolation_cgroup", "isolation_seccomp", "isolation_namespaces"]
BIG_POOL = 1 << 40  # the scaler's memory pool: never the bench's bottleneck


def plugin_available(name: str) -> bool:
    """Whether plugin ``name`` is registered (entry point) and its module exists."""
    if name not in {ep.name for ep in importlib.metadata.entry_points(group="noslate.plugins")}:
        return False
    try:
        return importlib.util.find_spec(f"plugins.{name}.plugin") is not None
    except ImportError:
        return False


def require_plugins(names: list[str]) -> None:
    missing = [n for n in names if not plugin_available(n)]
    if missing:
        raise Skip(f"plugin(s) not built yet: {', '.join(missing)}")


class Daemon:
    """One ``noslate serve`` process with its own state dir and token."""

    def __init__(self, workdir: Path, plugins: list[str], config: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.plugins = plugins
        self.token = secrets.token_hex(12)
        cfg = json.loads(json.dumps(config or {}))
        cfg.setdefault("plugins", {})["enabled"] = plugins
        cfg.setdefault("control", {})["token"] = self.token
        cfg.setdefault("server", {}).setdefault("grace_period", 2.0)
        scaler = cfg["plugins"].setdefault("scaler_reactive", {})
        scaler.setdefault("memory_pool", BIG_POOL)
        # The breaker reads the machine's load average: other processes on a shared
        # machine would open it and turn measurements into 503s. The bench measures the
        # request path, not admission control.
        scaler.setdefault("breaker", {}).setdefault("enabled", False)
        self.config = cfg
        self.proc: Any = None
        self.data_url = self.control_url = ""
        self.data_port = 0
        self.data_bind = "127.0.0.1:0"
        """Set a fixed port to restart the daemon where a balancer expects it."""
        self.log = workdir / "daemon.log"

    def start(self, timeout: float = 60.0) -> Daemon:
        require_plugins(self.plugins)
        noslate = VENV_BIN / "noslate"
        if not noslate.exists():
            raise Skip(f"{noslate} is missing (make setup)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "noslate.toml"
        conf.write_text(tomli_w.dumps(self.config))
        state = self.workdir / "state"
        argv = [str(noslate), "serve", "--config", str(conf), "--state-dir", str(state)]
        argv += ["--data-bind", self.data_bind, "--control-bind", "127.0.0.1:0"]
        env = clean_env({"PYTHONPATH": str(ROOT)})
        self.proc = spawn(argv, env, ROOT, self.log)
        info = state / "daemon.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Skip(f"noslate serve exited with {self.proc.returncode}: {self.tail()}")
            try:
                data = json.loads(info.read_text())
                if data.get("pid") == self.proc.pid:
                    self.data_url, self.control_url = data["data_url"], data["control_url"]
                    self.data_port = int(self.data_url.rsplit(":", 1)[1])
                    return self
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        self.stop()
        raise Skip(f"noslate serve did not start within {timeout} s: {self.tail()}")

    def tail(self, n: int = 600) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        kill_group(self.proc)  # launcher, seeds and instances share the daemon's group
        self.proc = None

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- control API ------------------------------------------------------------------------
    def control(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.control_url + path, headers=headers, timeout=120, **kw)

    def deploy(
        self, name: str, code: str, profile: dict[str, Any] | None = None, filename: str = "worker.js"
    ) -> None:
        body = {"code": code, "filename": filename, "profile": profile or {}}
        resp = self.control("PUT", f"/v1/functions/{name}", json=body)
        if resp.status_code not in (200, 201):
            raise Skip(f"deploy of {name} failed: HTTP {resp.status_code} {resp.text[:300]}")

    def remove(self, name: str) -> None:
        self.control("DELETE", f"/v1/functions/{name}")

    def instances(self, function: str | None = None) -> list[dict[str, Any]]:
        resp = self.control("GET", "/v1/instances")
        resp.raise_for_status()
        data = resp.json()
        items = data["instances"] if isinstance(data, dict) else data
        return [i for i in items if function is None or i.get("function") == function]

    # ---- data plane --------------------------------------------------------------------------
    def host(self, function: str) -> str:
        return f"{function}.localhost:{self.data_port}"

    def connect(self, function: str) -> KeepAlive:
        return KeepAlive(self.data_port, self.host(function))

    def warm(self, function: str, path: str = "/", tries: int = 3, timeout: float = 60.0) -> bytes:
        """One request that must answer 200 (deploy sanity check)."""
        try:
            conn = KeepAlive(self.data_port, self.host(function), timeout=timeout)
            try:
                status, body, _ = conn.get(path)
                for _ in range(tries - 1):
                    if status == 200:
                        break
                    time.sleep(0.3)
                    status, body, _ = conn.get(path)
            finally:
                conn.close()
        except OSError as exc:  # includes socket timeouts
            raise Skip(
                f"{function}{path}: no answer ({type(exc).__name__}: {exc}); {self.tail(300)}"
            ) from exc
        if status != 200:
            raise Skip(f"{function}{path} answered {status}: {body[:200]!r}")
        return body

    def wait_instances(
        self, function: str, count: int, timeout: float, version: str | None = None
    ) -> list[dict[str, Any]]:
        """``count`` ready instances of ``function`` (of ``version``, when given)."""
        deadline = time.monotonic() + timeout
        ready: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            ready = [
                i
                for i in self.instances(function)
                if i.get("state") == "ready"
                and i.get("role", "instance") in ("instance", "cold")
                and (version is None or i.get("version") == version)
            ]
            if len(ready) >= count:
                return ready
            time.sleep(0.25)
        raise Skip(f"{function}: only {len(ready)} of {count} instances ready after {timeout} s")


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disposable_starts(
    d: Daemon,
    name: str,
    code: str,
    profile: dict[str, Any],
    runs: int,
    warmups: int,
    warm_timeout: float = 60.0,
    pause: float = 0.0,
) -> list[float]:
    """Deploy ``name`` with ``profile``, then time ``runs`` GETs (after ``warmups``) on one
    keep-alive connection, in ms, ``pause`` seconds apart; a non-200 is a Skip. The
    function is removed after."""
    d.deploy(name, code, profile)
    try:
        d.warm(name, timeout=warm_timeout)
        conn = d.connect(name)
        out: list[float] = []
        try:
            for i in range(runs + warmups):
                if pause:
                    time.sleep(pause)
                status, body, dt = conn.get("/")
                if status != 200:
                    raise Skip(f"{name}: HTTP {status}: {body[:200]!r}")
                if i >= warmups:
                    out.append(dt * 1000)
        finally:
            conn.close()
        return out
    finally:
        d.remove(name)
