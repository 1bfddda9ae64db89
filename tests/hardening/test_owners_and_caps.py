"""Shared resources have owners and caps: KV namespaces, profile limits, the memory pool.

Before, any profile could name another function's namespace and read and overwrite
its KV data, and a profile could ask for 1e23 bytes of memory, 1e8 pids or 100000
replicas; three such functions emptied the memory pool for every other function.
"""

from __future__ import annotations

from pathlib import Path

import conftest
import pytest
import trio
from scaler.helpers import FakeFactory, make_scheduler, make_version, running

PY = {"runtime": "pytest"}
KV = """
export default { async fetch(req, env, ctx) {
  const url = new URL(req.url);
  const kv = await noslate.kvStorages.open("s");
  if (url.searchParams.has("set")) await kv.set("k", url.searchParams.get("set"));
  return new Response(String(await kv.get("k", { type: "text" })));
} };
"""
MiB = 1 << 20


@pytest.fixture(scope="module")
def kvd(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("owners")
    d = conftest.Daemon(tmp, {}, ["routing_host", "scaler_reactive", "kv_lru", "runtime_v8", "warmfork"], {})
    d.start()
    yield d
    d.stop()


def _deploy(d, name: str, **profile):
    return d.deploy(name, KV, profile, filename="w.mjs", check=False)


def test_another_functions_namespace_is_refused_without_a_grant(kvd) -> None:
    assert _deploy(kvd, "victim").status_code == 201
    assert kvd.request("victim", "/?set=secret").text == "secret"
    resp = _deploy(kvd, "thief", namespace="victim")
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert "namespace 'victim' belongs to function 'victim'" in error
    assert "namespaceGrants" in error and error.endswith("@ $.profile.namespace")
    assert kvd.request("thief").status_code == 404
    # a namespace created by one function is its own too
    assert _deploy(kvd, "team-a", namespace="team").status_code == 201
    kvd.request("team-a", "/?set=plans")
    assert _deploy(kvd, "team-b", namespace="team").status_code == 422


def test_the_owner_grants_and_cannot_pull_a_grant_in_use(kvd) -> None:
    assert _deploy(kvd, "owner", namespaceGrants=["guest"]).status_code == 201
    kvd.request("owner", "/?set=shared")
    assert _deploy(kvd, "guest", namespace="owner").status_code == 201
    assert kvd.request("guest").text == "shared"
    resp = _deploy(kvd, "owner")  # withdraws the grant guest runs on
    assert resp.status_code == 422
    assert "function 'guest' uses this function's namespace 'owner'" in resp.text
    # removed owner: the namespace passes to the function still using it
    assert kvd.control("DELETE", "/v1/functions/owner").status_code in (200, 204)
    assert kvd.request("guest").text == "shared"
    assert _deploy(kvd, "owner").status_code == 422  # now guest's namespace


@pytest.mark.parametrize(
    ("profile", "field", "cap"),
    [
        ({"resourceLimit": {"memory": 10**23}}, "resourceLimit.memory", "[limits] memory"),
        ({"resourceLimit": {"pids": 100000000}}, "resourceLimit.pids", "[limits] pids"),
        ({"worker": {"replicaCountLimit": 100000}}, "worker.replicaCountLimit", "[limits] replicas"),
        (
            {"worker": {"reservationCount": 100000, "replicaCountLimit": 100}},
            "worker.reservationCount",
            "[limits] reservations",
        ),
        ({"worker": {"maxActivateRequests": 10**9}}, "worker.maxActivateRequests", "[limits] concurrency"),
        ({"worker": {"cpuTimeLimitMs": 10**9}}, "worker.cpuTimeLimitMs", "[limits] cpu_time_limit_ms"),
        (
            {"worker": {"initializationTimeout": 10**9}},
            "worker.initializationTimeout",
            "[limits] initialization_timeout_ms",
        ),
    ],
)
def test_profile_values_above_the_caps_are_refused(kvd, profile, field: str, cap: str) -> None:
    resp = kvd.deploy("greedy", KV, profile, filename="w.mjs", check=False)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert any(e.endswith(f"@ $.profile.{field}") and cap in e for e in errors), errors


def test_caps_come_from_config(tmp_path: Path) -> None:
    d = conftest.Daemon(tmp_path, {"limits": {"memory": 128 * MiB}}, conftest.DEFAULT_PLUGINS, {}).start()
    try:
        resp = d.deploy("big", "x", {**PY, "resourceLimit": {"memory": 256 * MiB}}, check=False)
        assert resp.status_code == 422
        assert "memory is 268435456, above the cap of 134217728 ([limits] memory)" in resp.json()["errors"][0]
        assert (
            d.deploy("ok", "x", {**PY, "resourceLimit": {"memory": 128 * MiB}}, check=False).status_code
            == 201
        )
    finally:
        d.stop()


async def _hold(scheduler, name: str, release: trio.Event) -> None:
    lease = await scheduler.acquire(name)
    await release.wait()
    lease.release()


async def test_three_pool_hogs_leave_other_functions_served(autojump_clock) -> None:
    factory = FakeFactory(delay=0.05)
    scheduler = make_scheduler(factory, memory_pool=1024 * MiB, queue_timeout=5)
    for hog in ("h1", "h2", "h3"):
        scheduler.deploy(make_version(hog, memory=128 * MiB, worker={"maxActivateRequests": 1}))
    scheduler.deploy(make_version("good", memory=128 * MiB))
    release = trio.Event()
    async with running(scheduler), trio.open_nursery() as nursery:
        for hog in ("h1", "h2", "h3"):
            for _ in range(8):  # each asks for 8 x 128 MiB: the whole pool
                nursery.start_soon(_hold, scheduler, hog, release)
        await trio.sleep(1)
        per_function = {h: len([i for i in factory.live if i.function == h]) for h in ("h1", "h2", "h3")}
        assert per_function == {"h1": 2, "h2": 2, "h3": 2}, per_function  # 25% of 1 GiB each
        lease = await scheduler.acquire("good")  # served: the hogs left a quarter of the pool
        lease.release()
        release.set()
