"""Shared fixtures: a REAL ``noslate serve`` subprocess and helpers to talk to it.

``daemon`` starts one with the default test plugins; ``daemon_factory(config=...,
plugins=[...])`` starts more (each with its own state dir, port 0 binds and token).
The test-only runtime ``pytest`` (tests/kernel/testdist) is on PYTHONPATH of every
daemon; the product ships no fake runtime.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TESTDIST = ROOT / "tests" / "kernel" / "testdist"
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
DEFAULT_PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "test_runtime"]
START_TIMEOUT = 30.0


def plugin_available(name: str) -> bool:
    """Whether built-in plugin ``name`` can be imported (others may still be in progress)."""
    import importlib.util

    try:
        return importlib.util.find_spec(f"plugins.{name}.plugin") is not None
    except ImportError:
        return False


class Daemon:
    """A running ``noslate serve`` subprocess."""

    def __init__(self, tmp: Path, config: dict[str, Any], plugins: list[str], env: dict[str, str]) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.config_path = tmp / "noslate.toml"
        self.token = secrets.token_hex(16)
        data = json.loads(json.dumps(config))
        data.setdefault("plugins", {})["enabled"] = plugins
        data.setdefault("control", {})["token"] = self.token
        data.setdefault("server", {}).setdefault("grace_period", 5.0)
        self.config_path.write_text(tomli_w.dumps(data))
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = tmp / "daemon.stderr"
        self.data_url = self.control_url = ""
        self.pid = 0

    # ---- lifecycle --------------------------------------------------------------------
    def command(self) -> list[str]:
        noslate = VENV_BIN / "noslate"
        head = [str(noslate), "serve"] if noslate.exists() else [sys.executable, "-m", "kernel.daemon"]
        return [
            *head,
            "--config",
            str(self.config_path),
            "--state-dir",
            str(self.state_dir),
            "--data-bind",
            "127.0.0.1:0",
            "--control-bind",
            "127.0.0.1:0",
        ]

    def start(self) -> Daemon:
        info = self.state_dir / "daemon.json"
        info.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOSLATE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTDIST), str(ROOT), env.get("PYTHONPATH")]))
        env.update(self.extra_env)
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=self._stderr,
            stderr=self._stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.stderr()}")
            if info.exists():
                data = json.loads(info.read_text())
                if data.get("pid") == self.proc.pid:
                    self.data_url, self.control_url, self.pid = (
                        data["data_url"],
                        data["control_url"],
                        data["pid"],
                    )
                    return self
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"daemon did not start within {START_TIMEOUT} s:\n{self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            # the launcher and workers of a kill -9'd daemon die with it (pdeathsig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def restart(self) -> Daemon:
        self.stop()
        return self.start()

    # ---- control API -----------------------------------------------------------------
    def control(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return httpx.request(method, self.control_url + path, headers=headers, timeout=60, **kw)

    def deploy(
        self,
        name: str,
        file_or_code: str | Path,
        profile: dict[str, Any] | None = None,
        filename: str | None = None,
        check: bool = True,
    ) -> httpx.Response:
        """Deploy through ``PUT /v1/functions/{name}``; a Path reads the file."""
        if isinstance(file_or_code, Path):
            code, filename = file_or_code.read_text(), filename or file_or_code.name
        else:
            code = file_or_code
        body = {"code": code, "filename": filename or "index.js", "profile": profile or {}}
        resp = self.control("PUT", f"/v1/functions/{name}", json=body)
        if check:
            assert resp.status_code in (200, 201), resp.text
        return resp

    def logs(self, name: str) -> list[dict[str, Any]]:
        resp = self.control("GET", f"/v1/functions/{name}/logs")
        resp.raise_for_status()
        data = resp.json()
        return data["lines"] if isinstance(data, dict) else data

    # ---- data plane --------------------------------------------------------------------
    def request(
        self,
        function: str,
        path: str = "/",
        method: str = "GET",
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> httpx.Response:
        port = self.data_url.rsplit(":", 1)[1]
        hdrs = {"host": f"{function}.localhost:{port}", **(headers or {})}
        return httpx.request(method, self.data_url + path, content=body, headers=hdrs, timeout=timeout)

    def host_header(self, function: str) -> str:
        return f"{function}.localhost:{self.data_url.rsplit(':', 1)[1]}"


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    """``daemon_factory(config=None, plugins=None, env=None) -> Daemon`` (stopped at teardown)."""
    started: list[Daemon] = []

    def make(
        config: dict[str, Any] | None = None,
        plugins: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Daemon:
        tmp = tmp_path / f"daemon{len(started)}"
        tmp.mkdir()
        d = Daemon(tmp, config or {}, plugins or DEFAULT_PLUGINS, env or {})
        started.append(d)
        return d.start()

    yield make
    for d in started:
        try:
            d.stop(timeout=20)
        except Exception:
            d.kill9()


@pytest.fixture
def daemon(daemon_factory: Any) -> Daemon:
    """A running daemon with the default test plugins."""
    return daemon_factory()
