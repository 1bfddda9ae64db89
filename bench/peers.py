"""Peers run beside the daemon: workerd, Node and a bare hypercorn + trio app.

The bench installs workerd itself (``npm install --prefix bench/.peers workerd``, with
the machine's own environment so its CA settings apply); Node is the machine's ``node``.
Every measured child gets a clean environment (no NODE_EXTRA_CA_CERTS, which adds
30-45 ms to each Node start here) and listens on loopback only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import PEERS, ROOT, VENV_BIN, Skip, clean_env, free_port, kill_group, spawn, wait_port
from bench.workloads import calibrate_js, node_script, sw_script

WORKERD_CONFIG = """using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "sw", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:%(port)d", http = (), service = "sw") ]);
const w :Workerd.Worker = (serviceWorkerScript = embed "worker.js", compatibilityDate = "2024-09-23");
"""


def node_bin() -> str:
    path = shutil.which("node")
    if not path:
        raise Skip("node is not on PATH")
    return path


def workerd_bin(install: bool = True) -> str:
    """The workerd binary under bench/.peers, installed through npm on first use."""
    binary = PEERS / "node_modules" / ".bin" / "workerd"
    if not binary.exists() and install:
        npm = shutil.which("npm")
        if not npm:
            raise Skip("npm is not on PATH: cannot install workerd")
        PEERS.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--prefix", str(PEERS), "--no-audit", "--no-fund", "workerd"],
            env=dict(os.environ),  # npm keeps the machine's CA settings (a TLS proxy may need them)
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise Skip(f"npm install workerd failed: {proc.stderr.strip()[-300:]}")
    if not binary.exists():
        raise Skip(f"workerd not installed at {binary}")
    check = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=clean_env())
    if check.returncode != 0:
        raise Skip(f"workerd does not run here: {check.stderr.strip()[-300:]}")
    return str(binary)


def calibrate_init(target_ms: float = 150.0) -> tuple[int, float]:
    """Iterations of the init loop that take ~``target_ms`` in a fresh Node; returns (iterations, ms)."""
    node = node_bin()

    def once(n: int) -> float:
        argv = [node, "-e", calibrate_js(n)]
        times = []
        for _ in range(3):  # the fastest of 3: other load on the machine only adds time
            out = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=60)
            times.append(float(out.stdout.strip() or "0"))
        return min(times)

    n = 1000
    ms = once(n)
    for _ in range(4):
        if ms <= 0 or abs(ms - target_ms) < target_ms * 0.08:
            break
        n = int(n * target_ms / ms)
        ms = once(n)
    return n, ms


class Server:
    """A peer server process on a loopback port."""

    def __init__(
        self, name: str, argv: list[str], port: int, env: dict[str, str], cwd: Path, log: Path
    ) -> None:
        self.name, self.argv, self.port, self.env, self.cwd, self.log = name, argv, port, env, cwd, log
        self.proc: Any = None

    def start(self) -> Any:
        self.proc = spawn(self.argv, self.env, self.cwd, self.log)
        return self.proc

    def start_and_wait(self, timeout: float = 30.0) -> Server:
        self.start()
        try:
            wait_port(self.port, timeout, self.proc)
        except Exception as exc:
            self.stop()
            tail = self.log.read_text(errors="replace")[-500:] if self.log.exists() else ""
            raise Skip(f"{self.name} did not start: {exc}; {tail}") from exc
        return self

    def stop(self) -> None:
        kill_group(self.proc)
        self.proc = None

    @property
    def pid(self) -> int:
        return self.proc.pid


def workerd_server(workdir: Path, init_iterations: int = 0) -> Server:
    binary = workerd_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "worker.js").write_text(sw_script(init_iterations))
    (workdir / "config.capnp").write_text(WORKERD_CONFIG % {"port": port})
    return Server("workerd", [binary, "serve", "config.capnp"], port, clean_env(), workdir, workdir / "log")


def workerd_script_server(workdir: Path, script: str) -> Server:
    """workerd serving ``script`` (a service-worker bundle) as its only worker."""
    binary = workerd_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "worker.js").write_text(script)
    (workdir / "config.capnp").write_text(WORKERD_CONFIG % {"port": port})
    return Server("workerd", [binary, "serve", "config.capnp"], port, clean_env(), workdir, workdir / "log")


def node_server(workdir: Path, init_iterations: int = 0) -> Server:
    node = node_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "server.js").write_text(node_script(init_iterations))
    return Server("node", [node, "server.js", str(port)], port, clean_env(), workdir, workdir / "log")


def hypercorn_server(workdir: Path, workers: int = 1) -> Server:
    """The bare ASGI app under ``hypercorn --worker-class trio -w N``."""
    hypercorn = VENV_BIN / "hypercorn"
    if not hypercorn.exists():
        raise Skip(f"{hypercorn} is missing (pip install hypercorn into .venv)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        str(hypercorn),
        "--worker-class",
        "trio",
        "-w",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "bench.apps.bare_asgi:app",
    ]
    env = clean_env({"PYTHONPATH": str(ROOT)})
    return Server("hypercorn+trio", argv, port, env, ROOT, workdir / "log")


def fork_ceiling_server(workdir: Path, mode: str) -> Server:
    """The fork-per-request design at its leanest (``bench.apps.fork_ceiling``):
    ``mode`` ``fork`` (a fork per request) or ``spare`` (a pre-forked child per request)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [python_bin(), "-m", "bench.apps.fork_ceiling", "--port", str(port), "--mode", mode]
    env = clean_env({"PYTHONPATH": str(ROOT)})
    return Server(f"fork ceiling ({mode})", argv, port, env, ROOT, workdir / "log")


def python_bin() -> str:
    py = VENV_BIN / "python"
    return str(py) if py.exists() else sys.executable


def settle(seconds: float = 0.2) -> None:
    time.sleep(seconds)
