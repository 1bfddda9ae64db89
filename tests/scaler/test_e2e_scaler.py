"""End to end: a real daemon, real runtime_v8 workers, real HTTP."""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families


def plugin_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"plugins.{name}.plugin") is not None
    except ImportError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not plugin_available("runtime_v8"), reason="runtime_v8 plugin not built yet"),
]

PLUGINS = ["routing_host", "scaler_reactive", "runtime_v8", "warmfork", "kv_lru", "outbound_http"]

COUNTER = """
let n = 0;
addEventListener('fetch', (event) => {
  event.respondWith((async () => {
    n += 1;
    const mine = n;
    const ms = Number(new URL(event.request.url).searchParams.get('ms') || 0);
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response(String(mine));
  })());
});
"""


def _plugins() -> list[str]:
    return [p for p in PLUGINS if plugin_available(p)]


def _profile(**worker) -> dict:
    return {"resourceLimit": {"memory": 64 << 20}, "worker": worker}


def _instances(daemon, name: str) -> list[dict]:
    data = daemon.control("GET", "/v1/instances").json()
    rows = data["instances"] if isinstance(data, dict) else data
    return [row for row in rows if row["function"] == name]


def _wait_for(predicate, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def _parallel(calls, stagger: float = 0.05) -> list:
    results: list = [None] * len(calls)

    def run(i, fn):
        results[i] = fn()

    threads = []
    for i, fn in enumerate(calls):
        t = threading.Thread(target=run, args=(i, fn))
        t.start()
        threads.append(t)
        time.sleep(stagger)  # fixes the arrival order
    for t in threads:
        t.join(120)
    return results


def test_disposable_gives_every_request_a_fresh_instance(daemon_factory):
    daemon = daemon_factory(plugins=_plugins())
    daemon.deploy("once", COUNTER, _profile(disposable=True, replicaCountLimit=10))
    seen_pids: set[int] = set()

    def watch():
        rows = _instances(daemon, "once")
        seen_pids.update(row["pid"] for row in rows if row["pid"])
        return len([r for r in rows if r["active"] == 1]) == 4

    calls = [lambda: daemon.request("once", "/?ms=1500") for _ in range(4)]
    holder: list = []
    t = threading.Thread(target=lambda: holder.append(_parallel(calls)))
    t.start()
    _wait_for(watch)
    t.join(120)
    responses = holder[0]
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.text for r in responses] == ["1"] * 4  # nothing left behind by another request
    assert len(seen_pids) >= 4
    for _ in range(4):
        r = daemon.request("once", "/")
        assert (r.status_code, r.text) == (200, "1")
    _wait_for(lambda: _instances(daemon, "once") == [] or None)
    ready = {line.get("instance") for line in daemon.logs("once") if "instance ready" in line["message"]}
    assert len(ready) == 8


def test_reservations_exist_after_deploy_and_after_restart(daemon_factory):
    daemon = daemon_factory(plugins=_plugins())
    daemon.deploy("warm", COUNTER, _profile(reservationCount=2))
    rows = _wait_for(lambda: [r for r in _instances(daemon, "warm") if r["state"] == "ready"][:2] or None)
    before = {r["pid"] for r in _instances(daemon, "warm")}
    assert len(rows) == 2 and len(before) == 2
    daemon.restart()
    _wait_for(lambda: len([r for r in _instances(daemon, "warm") if r["state"] == "ready"]) == 2)
    after = {r["pid"] for r in _instances(daemon, "warm")}
    assert len(after) == 2 and not after & before
    assert daemon.request("warm", "/").status_code == 200


def test_rate_limit_gives_exactly_the_configured_successes(daemon_factory):
    daemon = daemon_factory(plugins=_plugins())
    profile = _profile()
    profile["rateLimit"] = {"maxTokenCount": 3, "tokensPerFill": 1, "fillInterval": 600000}
    daemon.deploy("limited", COUNTER, profile)
    statuses = [daemon.request("limited", "/") for _ in range(7)]
    assert [r.status_code for r in statuses].count(200) == 3
    rejected = [r for r in statuses if r.status_code != 200]
    assert {r.status_code for r in rejected} == {429}
    assert all(int(r.headers["retry-after"]) >= 1 for r in rejected)
    assert rejected[0].json()["reason"] == "rate_limited"


def test_queued_burst_on_one_instance_is_served_in_order(daemon_factory):
    daemon = daemon_factory(plugins=_plugins())
    daemon.deploy("single", COUNTER, _profile(maxActivateRequests=1, replicaCountLimit=1))
    assert daemon.request("single", "/").text == "1"  # instance up
    # requests arrive every 150 ms and each takes 500 ms: the queue grows to ~5
    responses = _parallel([lambda: daemon.request("single", "/?ms=500") for _ in range(8)], 0.15)
    assert [r.status_code for r in responses] == [200] * 8
    assert [int(r.text) for r in responses] == list(range(2, 10))
    assert len(_instances(daemon, "single")) == 1
    # the daemon's queue-wait histogram saw the queue: ~0.35 s more for each later arrival
    waits = _histogram(daemon.control("GET", "/metrics").text, "noslate_queue_wait_seconds", "single")
    assert waits["count"] == 9
    assert waits["sum"] > 4.0, waits
    assert waits["count"] - waits["le"]["0.25"] >= 5, waits  # at least 5 waited > 250 ms


def _histogram(text: str, name: str, function: str) -> dict:
    """A Prometheus histogram of one function from the text exposition."""
    out: dict = {"le": {}}
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    for sample in family.samples:
        if sample.labels.get("function") != function:
            continue
        if "le" in sample.labels:
            out["le"][sample.labels["le"]] = sample.value
        else:
            out[sample.name.rsplit("_", 1)[1]] = sample.value  # sum, count
    return out
