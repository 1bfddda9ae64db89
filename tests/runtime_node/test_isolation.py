"""Node workers under the isolation plugins (cgroup, seccomp, namespaces), under load.

Node's syscalls differ from Python's: the seccomp policy must hold while several Node
instances start and serve concurrent requests.
"""

from __future__ import annotations

import concurrent.futures
import os

import pytest

from .harness import CONFORMANCE

ISOLATION = ["isolation_cgroup", "isolation_seccomp", "isolation_namespaces"]
BASE = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_node"]


@pytest.mark.root
def test_conformance_workers_under_isolation_and_load(daemon_factory):
    import conftest

    if os.geteuid() != 0:
        pytest.skip("the isolation plugins need root")
    missing = [p for p in ISOLATION if not conftest.plugin_available(p)]
    if missing:
        pytest.skip(f"isolation plugins not available: {missing}")
    config = {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}}
    d = daemon_factory(config=config, plugins=[*BASE, *ISOLATION])
    profile = {"runtime": "nodejs", "worker": {"maxActivateRequests": 4, "replicaCountLimit": 3}}
    d.deploy("iso-echo", CONFORMANCE / "workers" / "echo-request.js", profile)
    d.deploy("iso-crypto", CONFORMANCE / "workers" / "crypto.js", profile)

    def one(i: int) -> tuple[int, str]:
        if i % 2:
            r = d.request("iso-crypto", "/", timeout=60)
            return r.status_code, r.text
        r = d.request(
            "iso-echo", f"/p{i}?k={i}", method="POST", body=f"b{i}", headers={"x-test": "t1"}, timeout=60
        )
        return r.status_code, r.text

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(40)))
    bad = [r for r in results if r[0] != 200]
    assert not bad, f"{len(bad)} failures, first: {bad[0]}\n{d.stderr()[-3000:]}"
    assert '"uuidOk":true' in results[1][1]
    assert '"body":"b0"' in results[0][1]
    instances = d.control("GET", "/v1/instances").json()
    items = instances if isinstance(instances, list) else instances.get("instances", [])
    node_items = [i for i in items if str(i.get("function", "")).startswith("iso-")]
    assert node_items, instances
    pid = int(node_items[0]["pid"])
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    assert status["Seccomp"].strip() == "2", "the Node worker runs without a seccomp filter"
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"node" in f.read()
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"), "no mount namespace"
