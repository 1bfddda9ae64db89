"""Every case of the shared conformance suite, over HTTP, against a real daemon.

Reads ``../shared/conformance/cases.json`` (see its ``about``): each case deploys a
worker from ``workers/`` through the control API and sends its requests to the data
plane with ``x-test: t1`` and a user-agent (driver: ``tests/conformance.py``). Needs the
runtime_v8 plugin.
"""

from __future__ import annotations

import conformance
import pytest


@pytest.fixture(scope="module")
def v8_daemon(tmp_path_factory):
    import conftest

    if not conftest.plugin_available("runtime_v8"):
        pytest.skip("plugins/runtime_v8 is not installed yet")
    tmp = tmp_path_factory.mktemp("conformance")
    yield from conformance.running_daemon(tmp, {}, conformance.RUNTIME_PLUGINS)


@pytest.mark.parametrize("case", conformance.CASES, ids=conformance.CASE_IDS)
def test_case(v8_daemon, case):
    worker = conformance.CONFORMANCE / case["worker"]
    profile: dict = {}
    if "cpu_limit_ms" in case:
        profile["worker"] = {"cpuTimeLimitMs": case["cpu_limit_ms"]}
    name = conformance.function_name("c-", case)
    v8_daemon.deploy(name, worker, profile)
    conformance.run_http_case(v8_daemon, name, case)
