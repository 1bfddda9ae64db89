"""Shared set-up of the isolation end-to-end tests: a real daemon with every isolation
plugin, the test-only ``isoprobe`` runtime, and readers of /proc and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import conftest  # tests/conftest.py (pytest puts tests/ on sys.path)
import pytest

from kernel.oslib import read_status as proc_status

ROOT, TESTDIST, VENV_BIN = conftest.ROOT, conftest.TESTDIST, conftest.VENV_BIN
Daemon, plugin_available = conftest.Daemon, conftest.plugin_available

HERE = Path(__file__).resolve().parent
PROBEDIST = HERE / "probedist"
PROBE_CODE = (HERE / "probe_code.py").read_text()
JS_HELLO = "addEventListener('fetch', (e) => e.respondWith(new Response('hello from js')));"
ISOLATION = ["isolation_cgroup", "isolation_seccomp", "isolation_namespaces"]
BASE = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork", "isoprobe"]


def skip_reason() -> str:
    if os.geteuid() != 0:
        return "needs root (setuid, namespaces, cgroups)"
    missing = [n for n in ("runtime_v8", "warmfork", *ISOLATION) if not plugin_available(n)]
    return f"plugins not built: {missing}" if missing else ""


SKIP = pytest.mark.skipif(bool(skip_reason()), reason=skip_reason() or "-")


def start_daemon(
    tmp: Path,
    isolation: list[str],
    extra: dict[str, Any] | None = None,
    *,
    top: dict[str, Any] | None = None,
    plugins: list[str] | None = None,
) -> Any:
    """A real ``noslate serve`` with ``isolation`` plugins on (unique cgroup root).

    ``extra``: more ``[plugins.*]`` sections; ``top``: other top-level sections
    (``server``, ``limits``...); ``plugins``: more plugins to enable."""
    config: dict[str, Any] = {
        "plugins": {
            "isolation_cgroup": {"root": f"noslate-e2e-{os.getpid()}-{uuid.uuid4().hex[:6]}"},
            # the probe runtime's modules live under tests/: make them visible in the root
            "isolation_namespaces": {"extra_paths": [str(PROBEDIST), str(TESTDIST)]},
            **(extra or {}),
        }
    }
    config["plugins"] = {k: v for k, v in config["plugins"].items() if k in isolation or k in (extra or {})}
    # other suites load this shared 2-core box: keep the load-average breaker out of the way
    config["plugins"]["scaler_reactive"] = {"breaker": {"max_load": 1000.0}}
    env = {"PYTHONPATH": os.pathsep.join([str(PROBEDIST), str(TESTDIST), str(ROOT)])}
    tmp.mkdir(parents=True, exist_ok=True)
    config.update(top or {})
    names = [*BASE, *[p for p in plugins or [] if p not in BASE], *isolation]
    return Daemon(tmp, config, names, env).start()


def cli_instances(daemon: Any) -> list[dict[str, Any]]:
    """``noslate instances --json`` against ``daemon`` (the real CLI)."""
    out = subprocess.run(
        [
            str(VENV_BIN / "noslate"),
            "--control",
            daemon.control_url,
            "--token",
            daemon.token,
            "instances",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rfind(b")") + 2 :].split()[1])


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def assert_sandboxed(pid: int, what: str) -> dict[str, str]:
    """Seccomp 2, NoNewPrivs 1, every uid non-zero, no capabilities at all."""
    st = proc_status(pid)
    assert st["Seccomp"] == "2", (what, pid, st["Seccomp"])
    assert st["NoNewPrivs"] == "1", (what, pid)
    assert all(int(u) != 0 for u in st["Uid"].split()), (what, pid, st["Uid"])
    assert all(int(g) != 0 for g in st["Gid"].split()), (what, pid, st["Gid"])
    for cap in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, (what, pid, cap, st[cap])
    return st
