"""Real processes: the layers applied by the launcher's own apply code, checked via /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setuid, namespaces)")


def run(spec: dict[str, Any], timeout: float = 60) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.isolation_seccomp.harness", json.dumps(spec)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_credentials_seccomp_and_rlimits_in_proc_status() -> None:
    (r,) = run({"seccomp": {}, "probe": "status"})
    assert "error" not in r, r
    assert r["Seccomp"] == "2"
    assert r["NoNewPrivs"] == "1"
    assert set(r["Uid"].split()) == {r["Uid"].split()[0]} and r["Uid"].split()[0] != "0"
    for key in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
        assert r[key] == "0000000000000000", (key, r[key])
    assert r["Groups"] == ""
    assert r["nofile"] == [4096, 4096]
    assert r["core"] == [0, 0]
    assert r["comm"] == "noslate:probe@v"
    assert r["cmdline"].startswith("noslate:probe@v1#1")


@pytest.mark.parametrize("mode", ["denylist", "allowlist"])
def test_denied_syscalls_get_eperm(mode: str) -> None:
    (r,) = run({"seccomp": {"mode": mode}, "probe": "denied"})
    assert "error" not in r, r
    for call in ("ptrace", "unshare", "mount", "personality_bad", "bpf", "keyctl", "clone_newuser"):
        assert r[call] == 1, (call, r)  # EPERM
    assert r["socket_inet"] == 1
    assert r["personality_ok"] == 0
    assert r["fork_status"] == 7 and r["thread"] is True


def test_kill_mode_kills_with_sigsys() -> None:
    (r,) = run({"seccomp": {"violation": "kill"}, "probe": "kill_ptrace"})
    assert r["status"] == -signal.SIGSYS
    assert "survived" not in r


def test_allowlist_survives_load_with_v8() -> None:
    results = run(
        {"seccomp": {"mode": "allowlist"}, "probe": "load", "preload_v8": True, "children": 3,
         "args": {"threads": 6, "seconds": 1.5}},
        timeout=120,
    )  # fmt: skip
    assert len(results) == 3
    for r in results:
        assert r["status"] == 0 and r["errors"] == [], r
        assert isinstance(r["js"], int) and r["js"] > 200000  # V8 ran JS under the filter
        assert r["iterations"] > 100 and r["forks"] == 20
        assert r["proc"]["Seccomp"] == "2"


def test_namespaces_and_root(tmp_path: Path) -> None:
    state = Path("/tmp") / f"nsl-state-{os.getpid()}-{uuid.uuid4().hex[:6]}.db"
    state.write_text("secret")
    try:
        paths = ["/etc/shadow", str(state), str(ROOT / "pyproject.toml"), str(ROOT / "kernel" / "sandbox.py")]
        (r,) = run({"seccomp": {}, "namespaces": {}, "probe": "view", "args": {"paths": paths}})
    finally:
        state.unlink()
    assert "error" not in r, r
    assert r["pids"] == [1] and r["pid_seen"] == 1  # alone in its pid namespace
    assert r["host_pid"] != 1
    assert r["ifaces"] == ["lo"]
    assert r["readable"]["/etc/shadow"] == "ENOENT"
    assert r["readable"][str(state)] == "ENOENT"
    assert r["readable"][str(ROOT / "pyproject.toml")] == "ENOENT"
    assert r["readable"][str(ROOT / "kernel" / "sandbox.py")] == "read"
    assert r["hostname"] == "noslate"
    assert r["wrote_tmp"] is True and r["wrote_usr"] == "EROFS"
    assert r["proc"]["Seccomp"] == "2" and r["proc"]["CapEff"] == "0000000000000000"


def test_state_dir_inside_bound_tree_is_masked(tmp_path: Path) -> None:
    state_dir = ROOT / "plugins" / f".nsl-test-state-{os.getpid()}"
    state_dir.mkdir()
    (state_dir / "registry.sqlite").write_text("secret")
    try:
        (r,) = run({"seccomp": {}, "namespaces": {}, "probe": "view", "state_dir": str(state_dir),
                    "args": {"paths": [str(state_dir / "registry.sqlite")]}})  # fmt: skip
    finally:
        (state_dir / "registry.sqlite").unlink()
        state_dir.rmdir()
    assert r["readable"][str(state_dir / "registry.sqlite")] in ("ENOENT", "EACCES"), r
