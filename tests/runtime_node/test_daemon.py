"""Every shared conformance case on the nodejs runtime, over HTTP through a real daemon.

Deploys each worker with ``"runtime": "nodejs"`` through the control API and checks the
answers (the busyloop case needs the kernel's CPU-time watchdog to kill the instance).
"""

from __future__ import annotations

import conformance
import pytest

PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_node"]


@pytest.fixture(scope="module")
def node_daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node-daemon")
    # a busy shared test machine must not open the load-average circuit breaker
    config = {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}}
    yield from conformance.running_daemon(tmp, config, PLUGINS)


@pytest.mark.parametrize("case", conformance.CASES, ids=conformance.CASE_IDS)
def test_case(node_daemon, case):
    worker = conformance.CONFORMANCE / case["worker"]
    profile: dict = {"runtime": "nodejs"}
    if "cpu_limit_ms" in case:
        profile["worker"] = {"cpuTimeLimitMs": case["cpu_limit_ms"]}
    name = conformance.function_name("n-", case)
    node_daemon.deploy(name, worker, profile)
    conformance.run_http_case(node_daemon, name, case)


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
