"""``noslate`` end to end: the CLI against a real daemon, and the daemon-less commands."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from .helpers import NOSLATE, ROOT, clean_env, run_cli, write_config

HANDLER = """
def handle(req, body, host):
    host.log("info", "handled " + req["url"])
    return 200, [("content-type", "text/plain")], [("hi " + req["url"]).encode()]
"""


def cli(daemon: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        NOSLATE_CONTROL=daemon.control_url,
        NOSLATE_CONTROL_TOKEN=daemon.token,
        NOSLATE_DATA=daemon.data_url,
        PYTHONPATH=str(ROOT),
    )
    return run_cli(*args, env=env, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("noslate: error: "), result.stderr
    return first


def test_deploy_list_invoke_logs_instances_rm(daemon: Any, tmp_path: Path) -> None:
    code = tmp_path / "handler.py"
    code.write_text(HANDLER)
    profile = tmp_path / "profile.toml"
    profile.write_text('runtime = "pytest"\n[worker]\nmaxActivateRequests = 2\n')

    r = cli(daemon, "deploy", "hello", str(code), "--profile", str(profile), "--env", "GREETING=hey")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("created hello sha256:")
    r = cli(daemon, "deploy", "hello", str(code), "--profile", str(profile), "--env", "GREETING=hey")
    assert r.returncode == 0 and r.stdout.startswith("updated hello sha256:"), r.stderr

    r = cli(daemon, "functions", "--json")
    assert r.returncode == 0, r.stderr
    functions = json.loads(r.stdout)
    assert [f["name"] for f in functions] == ["hello"]
    assert functions[0]["profile"]["runtime"] == "pytest"
    assert functions[0]["profile"]["worker"]["maxActivateRequests"] == 2
    assert functions[0]["profile"]["environments"] == [{"key": "GREETING", "value": "hey"}]
    r = cli(daemon, "functions")
    assert r.stdout.splitlines()[0].split() == ["NAME", "RUNTIME", "VERSION", "DEPLOYED"]
    assert r.stdout.splitlines()[1].split()[:2] == ["hello", "pytest"]

    r = cli(daemon, "invoke", "hello", "/a?b=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("hi ") and "/a?b=1" in r.stdout

    # without NOSLATE_DATA the CLI asks the daemon where its data plane listens
    env = clean_env(NOSLATE_CONTROL=daemon.control_url, NOSLATE_CONTROL_TOKEN=daemon.token)
    r = run_cli("invoke", "hello", "/x", "-i", "-X", "POST", "-d", "body", "-H", "X-A: 1", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HTTP/1.1 200 OK\n") and "content-type: text/plain" in r.stdout
    assert r.stdout.endswith("/x")

    r = cli(daemon, "instances", "--json")
    assert r.returncode == 0, r.stderr
    instances = json.loads(r.stdout)
    assert len(instances) >= 1
    inst = instances[0]
    assert inst["function"] == "hello" and inst["state"] in ("ready", "starting", "draining")
    assert isinstance(inst["pid"], int) and inst["pid"] > 0
    assert Path(f"/proc/{inst['pid']}").exists()
    assert inst["sandbox"]["ociVersion"] == "1.0.2"
    assert {"id", "version", "started_at", "active"} <= set(inst)
    r = cli(daemon, "instances")
    assert r.stdout.split()[:3] == ["ID", "FUNCTION", "PID"]
    assert str(inst["pid"]) in r.stdout

    r = cli(daemon, "logs", "hello", "--json")
    assert r.returncode == 0, r.stderr
    messages = [json.loads(line)["message"] for line in r.stdout.splitlines()]
    assert any(m.startswith("deployed version") for m in messages)
    assert any("handled" in m and "/a?b=1" in m for m in messages), messages
    r = cli(daemon, "logs", "hello")
    assert "handled" in r.stdout

    r = cli(daemon, "status", "--json")
    status = json.loads(r.stdout)
    assert status["functions"] == 1 and "test_runtime" in status["plugins"]
    r = cli(daemon, "status")
    assert r.returncode == 0 and "functions: 1" in r.stdout

    r = cli(daemon, "rm", "hello")
    assert r.returncode == 0 and r.stdout.strip() == "deleted hello"
    r = cli(daemon, "rm", "hello")
    assert r.returncode == 1
    assert one_line_error(r) == "noslate: error: unknown function 'hello' (HTTP 404)"
    assert json.loads(cli(daemon, "functions", "--json").stdout) == []


def test_logs_follow(daemon: Any, tmp_path: Path) -> None:
    code = tmp_path / "h.py"
    code.write_text(HANDLER)
    assert cli(daemon, "deploy", "follow", str(code), "--profile", _profile(tmp_path)).returncode == 0
    env = clean_env(NOSLATE_CONTROL=daemon.control_url, NOSLATE_CONTROL_TOKEN=daemon.token)
    proc = subprocess.Popen(
        [*NOSLATE, "logs", "follow", "-f", "--json"], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        time.sleep(1.0)  # let the follower subscribe
        assert daemon.request("follow", "/live").status_code == 200
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line)["message"])
            if any("/live" in m for m in seen):
                break
        assert any("handled" in m and "/live" in m for m in seen), seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _profile(tmp: Path) -> str:
    p = tmp / "p.json"
    p.write_text('{"runtime": "pytest"}')
    return str(p)


def test_deploy_errors(daemon: Any, tmp_path: Path) -> None:
    code = tmp_path / "h.py"
    code.write_text(HANDLER)
    bad = tmp_path / "bad.json"
    bad.write_text('{"runtime": "deno", "worker": {"colour": 1}}')
    r = cli(daemon, "deploy", "x", str(code), "--profile", str(bad))
    assert r.returncode == 1
    assert one_line_error(r) == "noslate: error: invalid function profile (HTTP 422)"
    assert "  unknown field(s): colour @ $.profile.worker" in r.stderr.splitlines()

    bad.write_text('{"runtime": "deno"}')
    r = cli(daemon, "deploy", "x", str(code), "--profile", str(bad))
    assert r.returncode == 1
    detail = r.stderr.splitlines()[1].strip()
    assert detail.startswith("unknown runtime 'deno'") and detail.endswith("@ $.profile.runtime")

    bad.write_text("{nope")
    r = cli(daemon, "deploy", "x", str(code), "--profile", str(bad))
    assert r.returncode == 2 and "is not valid JSON" in one_line_error(r)
    r = cli(daemon, "deploy", "x", str(code), "--env", "NOEQUALS")
    assert r.returncode == 2
    assert one_line_error(r) == "noslate: error: --env 'NOEQUALS': expected KEY=VALUE"
    r = cli(daemon, "deploy", "x", str(tmp_path / "missing.js"))
    assert r.returncode == 2 and "cannot read" in one_line_error(r)

    syntax = tmp_path / "broken.py"
    syntax.write_text("def handle(:\n")
    r = cli(daemon, "deploy", "x", str(syntax), "--profile", _profile(tmp_path))
    assert r.returncode == 1
    assert "broken.py:1:" in one_line_error(r)
    assert json.loads(cli(daemon, "functions", "--json").stdout) == []


def test_wrong_token_and_unreachable(daemon: Any) -> None:
    env = clean_env(NOSLATE_CONTROL=daemon.control_url, NOSLATE_CONTROL_TOKEN="wrong")
    r = run_cli("functions", env=env)
    assert r.returncode == 1
    assert one_line_error(r).startswith("noslate: error: wrong bearer token: ")
    assert one_line_error(r).endswith("(HTTP 401)") and "NOSLATE_CONTROL_TOKEN" in one_line_error(r)
    r = run_cli("--control", daemon.control_url, "--token", daemon.token, "functions", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = run_cli("functions", "--control", "127.0.0.1:1")
    assert r.returncode == 1
    assert one_line_error(r).startswith("noslate: error: cannot reach the control API at 127.0.0.1:1")


def test_usage_errors_exit_2() -> None:
    r = run_cli("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = run_cli("deploy", "onlyname")
    assert r.returncode == 2


def test_plugins_json_without_daemon() -> None:
    r = run_cli("plugins", "--json")
    assert r.returncode == 0, r.stderr
    plugins = {p["name"]: p for p in json.loads(r.stdout)}
    assert {"routing_host", "scaler_reactive", "kv_lru"} <= set(plugins)
    routing = plugins["routing_host"]
    assert routing["enabled"] is True and routing["distribution"] == "noslate-workers"
    assert "noslate_route" in routing["hooks"]
    assert "noslate_schedulers" in plugins["scaler_reactive"]["hooks"]
    assert "noslate_kv_backends" in plugins["kv_lru"]["hooks"]
    assert all(p["version"] for p in plugins.values())
    r = run_cli("plugins")
    assert r.stdout.split()[:4] == ["NAME", "VERSION", "ENABLED", "HOOKS"]


def test_plugins_json_honours_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", {"plugins": {"disabled": ["kv_lru"]}})
    r = run_cli("plugins", "--json", "--config", str(config))
    plugins = {p["name"]: p for p in json.loads(r.stdout)}
    assert plugins["kv_lru"]["enabled"] is False and plugins["kv_lru"]["hooks"] == []
    assert plugins["routing_host"]["enabled"] is True


def test_config_validate(tmp_path: Path) -> None:
    good = write_config(
        tmp_path / "good.toml",
        {"server": {"data_bind": "127.0.0.1:9"}, "plugins": {"enabled": ["routing_host"]}},
    )
    r = run_cli("config", "validate", str(good))
    assert r.returncode == 0 and r.stdout.strip() == f"{good}: ok"

    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = 1\n[logging]\nlevel = 3\n[plugins]\nenabled = ["routing_host"]\n')
    r = run_cli("config", "validate", str(bad))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0] == f"noslate: error: invalid configuration in {bad}"
    details = [line.strip() for line in lines[1:]]
    assert "unknown field(s): port @ $.server" in details
    assert all(" @ $." in d for d in details), details

    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    r = run_cli("config", "validate", str(broken))
    assert r.returncode == 2 and r.stderr.splitlines()[1].strip().startswith("TOML syntax error")

    r = run_cli("config", "validate", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "no such file" in r.stderr

    r = run_cli("config", "default")
    assert r.returncode == 0 and "[server]" in r.stdout


def test_serve_refuses_public_control_without_token(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        {
            "server": {"state_dir": str(tmp_path / "state")},
            "plugins": {"enabled": ["routing_host", "scaler_reactive"]},
        },
    )
    r = run_cli(
        "serve",
        "--config",
        str(config),
        "--data-bind",
        "127.0.0.1:0",
        "--control-bind",
        "0.0.0.0:0",
        timeout=60,
    )
    assert r.returncode == 1
    line = one_line_error(r)
    assert "refusing to serve the control API on non-loopback 0.0.0.0:0 without a token" in line
    assert len([x for x in r.stderr.splitlines() if x.startswith("noslate: error")]) == 1


def test_serve_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 1\n")
    r = run_cli("serve", "--config", str(bad), timeout=60)
    assert r.returncode == 2
    assert one_line_error(r) == f"noslate: error: invalid configuration in {bad}"
    assert "  unknown field(s): port @ $.server" in r.stderr.splitlines()
