"""Every case of the shared conformance suite, over HTTP, against a real daemon.

Reads ``../shared/conformance/cases.json`` (see its ``about``): each case deploys a
worker from ``workers/`` through the control API and sends its requests to the data
plane with ``x-test: t1`` and a user-agent. Needs the runtime_v8 plugin.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests_conformance_support import RUNTIME_PLUGINS, check, requests_of

CASES_FILE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "cases.json"
CASES = json.loads(CASES_FILE.read_text())["cases"] if CASES_FILE.exists() else []


@pytest.fixture(scope="module")
def v8_daemon(tmp_path_factory):
    import conftest

    if not conftest.plugin_available("runtime_v8"):
        pytest.skip("plugins/runtime_v8 is not installed yet")
    tmp = tmp_path_factory.mktemp("conformance")
    d = conftest.Daemon(tmp, {}, RUNTIME_PLUGINS, {})
    d.start()
    yield d
    try:
        d.stop(timeout=20)
    except Exception:
        d.kill9()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(v8_daemon, case):
    worker = CASES_FILE.parent / case["worker"]
    profile: dict = {}
    if "cpu_limit_ms" in case:
        profile["worker"] = {"cpuTimeLimitMs": case["cpu_limit_ms"]}
    name = "c-" + case["name"].lower().replace("_", "-")[:50]
    v8_daemon.deploy(name, worker, profile)
    for req in requests_of(case):
        body = req.get("body")
        if req.get("body_file") == "seq1m":
            body = bytes(i % 251 for i in range(1048576))
        headers = {"x-test": "t1", "user-agent": "noslate-conformance/1", **req.get("headers", {})}
        t0 = time.monotonic()
        resp = v8_daemon.request(name, req["path"], method=req["method"], body=body, headers=headers)
        elapsed_ms = (time.monotonic() - t0) * 1000
        check(resp, req["expect"], case["name"])
        within = req["expect"].get("within_ms", req.get("within_ms"))
        if within is not None:
            assert elapsed_ms <= within, f"{case['name']}: took {elapsed_ms:.0f} ms (within_ms {within})"
