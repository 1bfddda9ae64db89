"""Helpers of the surface tests: real ``noslate serve`` processes and the CLI.

Each daemon runs as its own process (``.venv/bin/noslate serve``) on port 0 with a
temporary state dir; its addresses are read from ``state_dir/daemon.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
NOSLATE = [sys.executable, "-m", "kernel.cli"]
MINIMAL_PLUGINS = ["routing_host", "scaler_reactive", "kv_lru"]
"""Enough for a daemon that serves the control API without starting workers."""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSLATE_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
) -> Any:
    """Run ``noslate ARGS`` to completion; the CompletedProcess (text)."""
    return subprocess.run(
        [*NOSLATE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
        cwd=ROOT,
        input=input,
    )


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, body in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in body.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class Daemon:
    """A running ``noslate serve`` process."""

    def __init__(self, proc: subprocess.Popen[str], state_dir: Path, config: Path, token: str) -> None:
        self.proc = proc
        self.state_dir = state_dir
        self.config = config
        self.token = token
        info = json.loads((state_dir / "daemon.json").read_text())
        self.control = info["control"]
        self.data = info["data"]
        self.control_url = f"http://{self.control}"
        self.data_url = f"http://{self.data}"

    def api(self, token: str | None = None) -> httpx.Client:
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.control_url, headers=headers, timeout=30)

    def cli(self, *args: str, timeout: float = 60) -> Any:
        env = clean_env(
            NOSLATE_CONTROL=self.control, NOSLATE_CONTROL_TOKEN=self.token, NOSLATE_DATA=self.data
        )
        return run_cli(*args, env=env, timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def start_daemon(
    tmp: Path,
    token: str = "",
    plugins: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    **extra: Any,
) -> Daemon:
    """Start ``noslate serve`` with a config under ``tmp``; wait until it answers."""
    state = tmp / "state"
    sections: dict[str, dict[str, Any]] = {
        "server": {
            "data_bind": "127.0.0.1:0",
            "control_bind": "127.0.0.1:0",
            "state_dir": str(state),
            "grace_period": 5.0,
            **(server or {}),
        },
        "control": {"token": token},
        "plugins": plugins if plugins is not None else {"enabled": MINIMAL_PLUGINS},
    }
    sections.update(extra)
    config = write_config(tmp / "noslate.toml", sections)
    log = (tmp / "daemon.log").open("w")
    proc = subprocess.Popen(
        [*NOSLATE, "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}:\n{(tmp / 'daemon.log').read_text()}")
        if (state / "daemon.json").exists():
            daemon = Daemon(proc, state, config, token)
            try:
                if httpx.get(f"{daemon.control_url}/readyz", timeout=2).status_code == 200:
                    return daemon
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"daemon not ready after 60 s:\n{(tmp / 'daemon.log').read_text()}")
