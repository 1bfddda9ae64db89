"""runtime_node's snapshot build runs tenant code: it gets the function's sandbox.

A real daemon as root with every isolation plugin and runtime_node. Before, the build
ran as root in the daemon's cgroup with the profile's flags unchecked: ``--inspect``
gave a root shell, a 64 MiB function held 400 MiB while building, blobs were never
deleted, and a build outlived ``kill -9`` of the daemon.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import conftest
import httpx
import pytest
from isolation_e2e.support import ISOLATION, skip_reason

pytestmark = pytest.mark.skipif(
    bool(skip_reason()) or not conftest.plugin_available("runtime_node"),
    reason=skip_reason() or "no runtime_node",
)
BASE = [
    "routing_host",
    "scaler_reactive",
    "kv_lru",
    "outbound_http",
    "runtime_node",
    "runtime_v8",
    "warmfork",
]
HELLO = "addEventListener('fetch', (e) => e.respondWith(new Response('v' + VERSION)));"
NODE = {"runtime": "nodejs"}


def start(tmp: Path, **config) -> conftest.Daemon:
    data = {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}, **config}
    tmp.mkdir(parents=True, exist_ok=True)
    return conftest.Daemon(tmp, data, [*BASE, *ISOLATION], {}).start()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start(tmp_path_factory.mktemp("nodebuild"))
    yield d
    d.stop()


def build_processes() -> list[tuple[int, int]]:
    """(pid, uid) of every running ``node --build-snapshot``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"--build-snapshot" not in cmd:
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
        out.append((int(pid), uid))
    return out


@pytest.mark.parametrize(
    ("field", "flag", "why"),
    [
        ("execArgv", "--inspect=127.0.0.1:9229", "it opens a debugger"),
        ("execArgv", "--inspect-brk", "it opens a debugger"),
        ("execArgv", "--cpu-prof-dir=/root", "it writes profiles or reports to the host"),
        ("execArgv", "--heap-prof", "it writes profiles or reports to the host"),
        ("v8Options", "--allow-natives-syntax", "it exposes engine internals"),
        ("v8Options", "--expose-gc", "it exposes engine internals"),
        ("execArgv", "--require=/etc/passwd", "it loads host files"),
    ],
)
@pytest.mark.parametrize("runtime", ["nodejs", "aworker"])
def test_unsafe_engine_flags_are_refused_at_deploy(
    daemon, runtime: str, field: str, flag: str, why: str
) -> None:
    resp = daemon.deploy("flags", HELLO, {"runtime": runtime, "worker": {field: [flag]}}, check=False)
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert flag in error and why in error and field in error, error
    assert build_processes() == []


def test_allowed_flags_still_apply(daemon) -> None:
    code = (
        "function depth(n) { try { return depth(n + 1); } catch { return n; } }\n"
        "addEventListener('fetch', (e) => e.respondWith(new Response(String(depth(0)))));"
    )
    daemon.deploy("deep", code, NODE)
    daemon.deploy("shallow", code, {"runtime": "nodejs", "worker": {"execArgv": ["--stack-size=100"]}})
    assert int(daemon.request("shallow").text) * 3 < int(daemon.request("deep").text)


def test_build_runs_as_the_worker_user_within_the_memory_limit(daemon) -> None:
    hog = (
        "const keep = []; for (let i = 0; i < 400; i++) keep.push(new Uint8Array(1 << 20).fill(1));\n"
        "addEventListener('fetch', (e) => e.respondWith(new Response(String(keep.length))));"
    )
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.extend(build_processes())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        resp = daemon.deploy(
            "hog", hog, {"runtime": "nodejs", "resourceLimit": {"memory": 64 << 20}}, check=False
        )
    finally:
        stop.set()
        watcher.join(5)
    assert resp.status_code == 422, resp.text
    assert "ran out of memory (limit 67108864 bytes)" in resp.json()["error"], resp.text
    assert seen and all(uid != 0 for _, uid in seen), seen
    assert daemon.request("hog").status_code == 404  # nothing half-deployed
    daemon.deploy("fine", "addEventListener('fetch', (e) => e.respondWith(new Response('ok')));", NODE)
    assert daemon.request("fine").text == "ok"


def test_blobs_of_superseded_and_removed_versions_are_deleted(daemon) -> None:
    snapshots = Path(daemon.state_dir) / "runtime_node" / "snapshots"

    def blobs() -> list[Path]:
        return sorted(snapshots.glob("*/*.blob"))

    before = set(blobs())
    for version in range(3):
        daemon.deploy("churn", HELLO.replace("VERSION", str(version)), NODE)
        assert daemon.request("churn").text == f"v{version}"
        assert len(set(blobs()) - before) == 1
    status = daemon.control("GET", "/v1/status").json()
    usage = status["state_dir_bytes"]
    assert usage["runtime_node"] >= (set(blobs()) - before).pop().stat().st_size
    assert usage["total"] >= usage["registry.sqlite3"] + usage["runtime_node"]
    assert daemon.control("DELETE", "/v1/functions/churn").status_code in (200, 204)
    assert set(blobs()) - before == set()


def test_no_build_survives_kill_9_of_the_daemon(tmp_path: Path) -> None:
    d = start(tmp_path / "k9")
    spin = "for (;;) {}\naddEventListener('fetch', (e) => e.respondWith(new Response('never')));"

    def deploy() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the daemon dies under it
            d.deploy("spin", spin, NODE, check=False)

    thread = threading.Thread(target=deploy, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not build_processes() and time.monotonic() < deadline:
        time.sleep(0.02)
    builds = build_processes()
    assert builds, "the build never started"
    os.kill(d.pid, signal.SIGKILL)  # the daemon alone: its launcher and jobs must follow
    deadline = time.monotonic() + 10
    while build_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert build_processes() == [], "a snapshot build outlived the daemon"
    d.proc.wait(10)
    thread.join(10)
