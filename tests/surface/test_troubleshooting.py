"""The common mistakes of docs/operations.md "Troubleshooting" get the messages it quotes.

Real ``noslate`` processes: a port another program holds, a state directory a running
daemon holds, misspelt config keys and profile fields, an unknown scheduler.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from .helpers import ROOT, clean_env, run_cli, start_daemon

DOC = (ROOT / "docs" / "operations.md").read_text()


def only_line(r: Any) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("noslate: error: ")]
    assert lines, r.stderr
    return lines[0]


def test_troubleshooting_section_exists() -> None:
    assert "\n## Troubleshooting\n" in DOC


def test_port_in_use_names_the_address_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli(
            "serve",
            "--data-bind",
            f"127.0.0.1:{port}",
            "--control-bind",
            "127.0.0.1:0",
            "--state-dir",
            str(tmp_path / "state"),
            timeout=60,
        )
    assert r.returncode == 1
    line = only_line(r)
    assert f"127.0.0.1:{port} is already in use" in line and "--data-bind" in line, line
    assert "is already in use" in DOC


def test_second_daemon_on_a_state_dir_is_refused(tmp_path: Path) -> None:
    first = start_daemon(tmp_path)
    try:
        r = run_cli(
            "serve",
            "--data-bind",
            "127.0.0.1:0",
            "--control-bind",
            "127.0.0.1:0",
            "--state-dir",
            str(first.state_dir),
            timeout=60,
        )
        assert r.returncode == 1
        line = only_line(r)
        assert f"another noslate daemon (pid {first.proc.pid}) is using state directory" in line, line
        # the refused daemon removed nothing of the running one's
        assert json.loads((first.state_dir / "daemon.json").read_text())["pid"] == first.proc.pid
        with first.api() as api:
            assert api.get("/healthz").status_code == 200
    finally:
        first.stop()
    assert "another noslate daemon" in DOC


def test_misspelt_config_key_gets_a_suggestion(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\ndata_bnd = "127.0.0.1:9080"\n')
    r = run_cli("config", "validate", str(bad))
    assert r.returncode == 2
    assert "  unknown field(s): data_bnd (did you mean data_bind?) @ $.server" in r.stderr.splitlines()
    # what `noslate serve` would only find at start-up is reported by validate too
    bad.write_text('[scheduling]\nscheduler = "fast"\n')
    r = run_cli("config", "validate", str(bad))
    assert r.returncode == 2
    assert (
        "  'fast' is not recognized; choose one of: reactive @ $.scheduling.scheduler"
        in r.stderr.splitlines()
    ), r.stderr


def test_misspelt_profile_field_gets_a_suggestion(control_daemon: Any, tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"worker": {"maxActiveRequests": 4}}))
    code = tmp_path / "index.js"
    code.write_text("addEventListener('fetch', e => e.respondWith(new Response('hi')))")
    env = clean_env(NOSLATE_CONTROL=control_daemon.control_url, NOSLATE_CONTROL_TOKEN=control_daemon.token)
    r = run_cli("deploy", "hello", str(code), "--profile", str(profile), env=env)
    assert r.returncode == 1
    assert (
        "  unknown field(s): maxActiveRequests (did you mean maxActivateRequests?) @ $.profile.worker"
        in r.stderr.splitlines()
    ), r.stderr
    assert "did you mean" in DOC
