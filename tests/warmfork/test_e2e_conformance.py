"""The shared conformance cases through instances forked from seeds, and through cold
starts asked for with ``worker.disableSeed`` on the same daemon (warmfork enabled).
The daemon without the warmfork plugin runs them in ``tests/e2e/test_conformance.py``."""

from __future__ import annotations

from typing import Any

import conformance
import pytest

from . import e2e


@pytest.fixture(scope="module")
def wf_daemon(tmp_path_factory: Any) -> Any:
    e2e.need_runtime_v8()
    tmp = tmp_path_factory.mktemp("wf-conformance")
    yield from conformance.running_daemon(tmp, {"plugins": {"scaler_reactive": e2e.CALM}}, e2e.PLUGINS)


@pytest.mark.parametrize("mode", ["seed", "cold"])
@pytest.mark.parametrize("case", conformance.CASES, ids=conformance.CASE_IDS)
def test_case(wf_daemon: Any, case: dict[str, Any], mode: str) -> None:
    worker: dict[str, Any] = {"disableSeed": mode == "cold"}
    if "cpu_limit_ms" in case:
        worker["cpuTimeLimitMs"] = case["cpu_limit_ms"]
    name = conformance.function_name(f"{mode}-", case)
    # small memory limits: the scheduler's pool (1 GiB) must fit every case's instance
    profile = {"worker": worker, "resourceLimit": {"memory": 64 << 20}}
    wf_daemon.deploy(name, conformance.CONFORMANCE / case["worker"], profile)
    conformance.run_http_case(wf_daemon, name, case)
    roles = {i["role"] for i in e2e.instances(wf_daemon, name)}
    assert roles <= {"instance" if mode == "seed" else "cold"}, roles
    seeded = [s["function"] for s in e2e.seeds(wf_daemon, name)]
    assert seeded == ([name] if mode == "seed" else [])
    wf_daemon.control("DELETE", f"/v1/functions/{name}")
