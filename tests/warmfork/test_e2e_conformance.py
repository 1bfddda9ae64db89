"""The shared conformance cases through instances forked from seeds, and through cold
starts asked for with ``worker.disableSeed`` on the same daemon (warmfork enabled).
The daemon without the warmfork plugin runs them in ``tests/e2e/test_conformance.py``."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import pytest

from . import e2e

CASES_FILE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "cases.json"
CASES = json.loads(CASES_FILE.read_text())["cases"] if CASES_FILE.exists() else []
SUPPORT = Path(__file__).resolve().parents[1] / "e2e" / "tests_conformance_support.py"


def _support() -> Any:
    spec = importlib.util.spec_from_file_location("warmfork_conformance_support", SUPPORT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def wf_daemon(tmp_path_factory: Any) -> Any:
    import conftest

    e2e.need_runtime_v8()
    d = conftest.Daemon(
        tmp_path_factory.mktemp("wf-conformance"), {"plugins": {"scaler_reactive": e2e.CALM}}, e2e.PLUGINS, {}
    )
    d.start()
    yield d
    try:
        d.stop(timeout=20)
    except Exception:
        d.kill9()


@pytest.mark.parametrize("mode", ["seed", "cold"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(wf_daemon: Any, case: dict[str, Any], mode: str) -> None:
    support = _support()
    worker: dict[str, Any] = {"disableSeed": mode == "cold"}
    if "cpu_limit_ms" in case:
        worker["cpuTimeLimitMs"] = case["cpu_limit_ms"]
    name = f"{mode}-" + case["name"].lower().replace("_", "-")[:50]
    # small memory limits: the scheduler's pool (1 GiB) must fit every case's instance
    profile = {"worker": worker, "resourceLimit": {"memory": 64 << 20}}
    wf_daemon.deploy(name, CASES_FILE.parent / case["worker"], profile)
    for req in support.requests_of(case):
        body = req.get("body")
        if req.get("body_file") == "seq1m":
            body = bytes(i % 251 for i in range(1048576))
        headers = {"x-test": "t1", "user-agent": "noslate-conformance/1", **req.get("headers", {})}
        t0 = time.monotonic()
        resp = wf_daemon.request(name, req["path"], method=req["method"], body=body, headers=headers)
        elapsed_ms = (time.monotonic() - t0) * 1000
        support.check(resp, req["expect"], case["name"])
        within = req["expect"].get("within_ms", req.get("within_ms"))
        if within is not None:
            assert elapsed_ms <= within, f"{case['name']}: took {elapsed_ms:.0f} ms (within_ms {within})"
    roles = {i["role"] for i in e2e.instances(wf_daemon, name)}
    assert roles <= {"instance" if mode == "seed" else "cold"}, roles
    seeded = [s["function"] for s in e2e.seeds(wf_daemon, name)]
    assert seeded == ([name] if mode == "seed" else [])
    wf_daemon.control("DELETE", f"/v1/functions/{name}")
