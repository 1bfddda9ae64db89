"""Every shared conformance case on the nodejs runtime, over HTTP through a real daemon.

Deploys each worker with ``"runtime": "nodejs"`` through the control API and checks the
answers (the busyloop case needs the kernel's CPU-time watchdog to kill the instance).
"""

from __future__ import annotations

import json
import time

import pytest

from .harness import CONFORMANCE
from .test_direct import requests_of

CASES = json.loads((CONFORMANCE / "cases.json").read_text())["cases"] if CONFORMANCE.exists() else []
PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_node"]


def check(resp, expect, name):
    where = f"{name}: {resp.status_code} {resp.text[:300]!r}"
    if "status" in expect:
        assert resp.status_code == expect["status"], where
    if "status_range" in expect:
        lo, hi = expect["status_range"]
        assert lo <= resp.status_code <= hi, where
    for key, value in expect.get("headers", {}).items():
        assert resp.headers.get(key) == value, f"{where}: header {key}={resp.headers.get(key)!r}"
    if "body" in expect:
        assert resp.text == expect["body"], where
    if "body_json" in expect:
        assert json.loads(resp.text) == expect["body_json"], where
    for bad in expect.get("body_excludes", []):
        assert bad not in resp.text, f"{where}: contains {bad!r}"


@pytest.fixture(scope="module")
def node_daemon(tmp_path_factory):
    import conftest

    tmp = tmp_path_factory.mktemp("node-daemon")
    # a busy shared test machine must not open the load-average circuit breaker
    config = {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}}
    d = conftest.Daemon(tmp, config, PLUGINS, {})
    d.start()
    yield d
    try:
        d.stop(timeout=20)
    except Exception:
        d.kill9()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(node_daemon, case):
    worker = CONFORMANCE / case["worker"]
    profile: dict = {"runtime": "nodejs"}
    if "cpu_limit_ms" in case:
        profile["worker"] = {"cpuTimeLimitMs": case["cpu_limit_ms"]}
    name = "n-" + case["name"].lower().replace("_", "-")[:50]
    node_daemon.deploy(name, worker, profile)
    for req in requests_of(case):
        body = req.get("body")
        if req.get("body_file") == "seq1m":
            body = bytes(i % 251 for i in range(1048576))
        headers = {"x-test": "t1", "user-agent": "noslate-conformance/1", **req.get("headers", {})}
        t0 = time.monotonic()
        resp = node_daemon.request(name, req["path"], method=req["method"], body=body, headers=headers)
        elapsed_ms = (time.monotonic() - t0) * 1000
        check(resp, req["expect"], case["name"])
        if "within_ms" in req:
            assert elapsed_ms <= req["within_ms"], f"{case['name']}: took {elapsed_ms:.0f} ms"


def test_handler_form_is_rejected_naming_the_field(node_daemon):
    resp = node_daemon.deploy(
        "n-handler",
        "module.exports.handler = () => {}",
        {"runtime": "nodejs", "handler": "index.handler"},
        check=False,
    )
    assert resp.status_code in (400, 422), resp.text
    assert "handler" in resp.text and "not support" in resp.text


def test_top_level_error_fails_the_deploy_with_the_users_error(node_daemon):
    code = "const x = 1;\nthrow new Error('init exploded');\naddEventListener('fetch', () => {});\n"
    resp = node_daemon.deploy("n-throw", code, {"runtime": "nodejs"}, filename="boom.js", check=False)
    assert resp.status_code in (400, 422), resp.text
    assert "init exploded" in resp.text and "boom.js:2" in resp.text
