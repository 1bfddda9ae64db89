"""Deploy-time work is untrusted: esbuild reads nothing of the host and runs sandboxed.

A real daemon as root with every isolation plugin (tests/isolation_e2e/support.py).
Each probe once served host files (the shadow file, the registry's SQLite WAL, the
daemon's environment with the control token); now each deploy fails with 422 naming
the specifier, and the esbuild job runs as the worker user in a cgroup of its own.
"""

from __future__ import annotations

import os
import threading
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w
from isolation_e2e.support import ISOLATION, SKIP, start_daemon

pytestmark = SKIP


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("confined"), ISOLATION)
    yield d
    d.stop()


def _module(spec: str) -> str:
    return (
        f'import x from "{spec}" with {{ type: "text" }};\n'
        "export default { fetch() { return new Response(x); } };\n"
    )


@pytest.mark.parametrize(
    "spec",
    [
        "/etc/shadow",
        "/dev/zero",
        "../../../../etc/passwd",
        "react",
        "file:///etc/shadow",
    ],
)
def test_host_file_imports_are_refused(daemon, spec: str) -> None:
    resp = daemon.deploy("leak", _module(spec), filename="worker.mjs", check=False)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert f'cannot import "{spec}"' in body["error"], body
    assert "imports resolve only within the uploaded file" in body["error"]
    assert daemon.request("leak").status_code == 404


def test_state_files_and_proc_environ_are_refused(daemon) -> None:
    wal = Path(daemon.state_dir) / "registry.sqlite3-wal"
    for spec in (str(wal), str(Path(daemon.state_dir) / "daemon.json"), f"/proc/{daemon.pid}/environ"):
        resp = daemon.deploy("leak2", _module(spec), filename="worker.mjs", check=False)
        assert resp.status_code == 422, (spec, resp.text)
        assert "cannot import" in resp.json()["error"]
        assert daemon.token not in resp.text


def test_every_resolve_error_is_reported(daemon) -> None:
    code = (
        'import a from "./a.js";\nimport b from "b";\n'
        "export default { fetch() { return new Response(a + b); } };"
    )
    resp = daemon.deploy("many", code, filename="worker.mjs", check=False)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert '"./a.js"' in error and '"b"' in error and "and 1 more" in error


def test_data_urls_and_plain_modules_still_bundle(daemon) -> None:
    code = (
        'import t from "data:text/plain,inline" with { type: "text" };\n'
        "export default { fetch() { return new Response(t); } };\n"
    )
    daemon.deploy("inline", code, filename="worker.mjs")
    assert daemon.request("inline").text == "inline"


def _watch_esbuild(stop: threading.Event, seen: list[tuple[int, str, str]]) -> None:
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"prepare.mjs" not in cmd:
                    continue
                status = Path(f"/proc/{pid}/status").read_text()
                cgroup = Path(f"/proc/{pid}/cgroup").read_text()
            except OSError:
                continue
            uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
            mem = next((line for line in cgroup.splitlines() if ":memory:" in line), "")
            seen.append((uid, mem, status))
        time.sleep(0.002)


def test_esbuild_runs_unprivileged_in_its_own_cgroup(daemon) -> None:
    stop = threading.Event()
    seen: list[tuple[int, str, str]] = []
    watcher = threading.Thread(target=_watch_esbuild, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        for i in range(5):
            body = f"export default {{ fetch() {{ return new Response('m{i}'); }} }};"
            daemon.deploy(f"mod{i}", body, filename="worker.mjs")
            if seen:
                break
    finally:
        stop.set()
        watcher.join(5)
    assert seen, "never saw the esbuild job running"
    uid, mem, _status = seen[0]
    assert uid != 0, "esbuild ran as root"
    assert "noslate" in mem, f"esbuild is not in a cgroup of ours: {mem!r}"


def test_job_output_and_memory_are_bounded(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, ISOLATION, extra={})
    d.stop()
    data = tomllib.loads(d.config_path.read_text())
    data["deploy"] = {"build_max_output": 1024 * 1024}
    d.config_path.write_text(tomli_w.dumps(data))
    d.start()
    try:
        big = (
            "export const s = '"
            + "x" * (2 * 1024 * 1024)
            + "';\nexport default { fetch() { return new Response(s); } };"
        )
        resp = d.deploy("flood", big, filename="worker.mjs", check=False)
        assert resp.status_code == 422, resp.text
        assert "wrote more than 1048576 bytes of output" in resp.json()["error"]
        small = "export default { fetch() { return new Response('fine'); } };"
        d.deploy("fine", small, filename="worker.mjs")
        assert d.request("fine").text == "fine"
    finally:
        d.stop()
