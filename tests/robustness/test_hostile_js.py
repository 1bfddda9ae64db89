"""Hostile JavaScript next to a well-behaved function (real daemon, runtime_v8, cgroups).

One function throws, one spins, one hogs memory, one returns a huge body, one never
responds, one floods console.log, one creates timers without end; meanwhile a
well-behaved function gets steady traffic. Every well-behaved request succeeds, the
daemon stays up, and every failure is a clear JSON error plus a function log line.
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest

GOOD = "export default { fetch(req) { return new Response('good ' + new URL(req.url).pathname); } };"
THROWS = "addEventListener('fetch', (e) => { throw new Error('boom from user code'); });"
SPINS = "export default { fetch() { for (;;) {} } };"
HOG = """
export default { fetch() {
  const keep = [];
  for (;;) keep.push(new Array(1 << 20).fill(keep.length));
} };
"""
HUGE = """
export default { fetch() {
  const chunk = new Uint8Array(1 << 20).fill(120);
  let n = 0;
  const body = new ReadableStream({ pull(c) { if (n++ < 48) c.enqueue(chunk); else c.close(); } });
  return new Response(body);
} };
"""
NEVER = "export default { fetch() { return new Promise(() => {}); } };"
FLOOD = """
export default { fetch() {
  for (let i = 0; i < 5000; i++) console.log('flood line ' + i + ' ' + 'x'.repeat(200));
  return new Response('flooded');
} };
"""
TIMERS = """
export default { fetch() {
  for (;;) { setTimeout(() => {}, 1e9); Promise.resolve().then(() => {}); }
} };
"""
HOSTILE = {
    "throws": (THROWS, {}),
    "spins": (SPINS, {"worker": {"cpuTimeLimitMs": 300}, "resourceLimit": {"cpu": 0.5}}),
    "hog": (HOG, {"resourceLimit": {"memory": 96 << 20, "cpu": 0.5}, "worker": {"cpuTimeLimitMs": 5000}}),
    "huge": (HUGE, {}),
    "never": (NEVER, {}),
    "flood": (FLOOD, {}),
    "timers": (
        TIMERS,
        {"worker": {"cpuTimeLimitMs": 500}, "resourceLimit": {"memory": 128 << 20, "cpu": 0.5}},
    ),
}


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    import conftest

    for needed in ("runtime_v8", "isolation_cgroup"):
        if not conftest.plugin_available(needed):
            pytest.skip(f"plugins/{needed} is not installed")
    if os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("needs root and the cgroup v1 memory controller")
    plugins = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "isolation_cgroup"]
    config = {
        "server": {"response_timeout": 10.0},
        "logging": {"function_log_lines": 300, "function_log_rate": 100},
        "plugins": {
            "isolation_cgroup": {"root": f"noslate-rob-{os.getpid()}"},
            # other test runs share this host: its load average says nothing about us
            "scaler_reactive": {"breaker": {"max_load": 10000.0}},
        },
    }
    daemon = conftest.Daemon(tmp_path_factory.mktemp("hostile"), config, plugins, {})
    daemon.start()
    daemon.deploy("good", GOOD, {"worker": {"maxActivateRequests": 4}}, filename="good.js")
    for name, (code, profile) in HOSTILE.items():
        daemon.deploy(name, code, profile, filename=f"{name}.js")
    yield daemon
    try:
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill9()


def _json_error(r: httpx.Response) -> str:
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert "/work/" not in r.text and "Traceback" not in r.text
    return body["error"]


def _log_text(d, name: str) -> str:
    return "\n".join(line["message"] for line in d.logs(name))


def test_hostile_functions_do_not_disturb_a_good_one(d):
    assert d.request("good", "/warm").text == "good /warm"  # a running function, then the storm
    stop = threading.Event()
    good: list[tuple[int, str]] = []

    def steady() -> None:
        with httpx.Client(timeout=30) as client:
            port = d.data_url.rsplit(":", 1)[1]
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = client.get(f"{d.data_url}/n{i}", headers={"host": f"good.localhost:{port}"})
                    good.append((r.status_code, r.text))
                except httpx.HTTPError as exc:
                    good.append((0, repr(exc)))
                time.sleep(0.02)

    results: dict[str, httpx.Response | Exception] = {}

    def hostile(name: str) -> None:
        try:
            results[name] = d.request(name, "/", timeout=60)
        except Exception as exc:
            results[name] = exc

    runner = threading.Thread(target=steady)
    runner.start()
    try:
        threads = [threading.Thread(target=hostile, args=(n,)) for n in HOSTILE for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        time.sleep(0.5)
    finally:
        stop.set()
        runner.join(30)
    assert d.proc.poll() is None, d.stderr()
    bad = [g for g in good if g[0] != 200 or not g[1].startswith("good /n")]
    assert len(good) > 20 and not bad, bad[:5]

    r = results["throws"]
    assert r.status_code == 500 and "/work/" not in r.text, r.text
    assert "boom from user code" in _log_text(d, "throws")

    r = results["spins"]
    assert 500 <= r.status_code < 600 and "CPU time limit" in _json_error(r)
    assert "CPU time limit" in _log_text(d, "spins")

    r = results["hog"]
    assert 500 <= r.status_code < 600, r.text
    _json_error(r)
    assert "memory" in _log_text(d, "hog").lower()

    r = results["huge"]
    assert r.status_code == 200 and len(r.content) == 48 << 20

    r = results["never"]
    assert r.status_code == 504 and "response_timeout" in _json_error(r)
    assert "did not respond within 10 s" in _log_text(d, "never")

    r = results["flood"]
    assert r.status_code == 200 and r.text == "flooded"
    lines = d.logs("flood")
    assert len(lines) <= 300
    assert any("log lines dropped" in line["message"] for line in lines) or len(lines) < 300

    r = results["timers"]
    assert 500 <= r.status_code < 600, r.text
    _json_error(r)

    # every hostile function recovers for its next request (new instance)
    assert d.request("throws", "/").status_code == 500
    assert d.request("huge", "/").status_code == 200
    assert d.request("flood", "/").text == "flooded"
    assert d.request("good", "/after").text == "good /after"


def test_console_flood_is_bounded_and_reported(d):
    for _ in range(3):
        assert d.request("flood", "/").text == "flooded"
    time.sleep(1.2)
    d.request("flood", "/")  # under the rate again: the drop count is reported
    lines = d.logs("flood")
    assert len(lines) <= 300
    dropped = [line for line in lines if "log lines dropped" in line["message"]]
    assert dropped and "function_log_rate" in dropped[-1]["message"]
