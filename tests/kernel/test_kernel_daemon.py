"""The daemon end to end: a real ``noslate serve`` subprocess, real workers, real HTTP.

Workers use the test-only ``pytest`` runtime (tests/kernel/testdist) so these tests
exercise the kernel independently of the JavaScript runtime.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

PY = {"runtime": "pytest"}

ECHO = """
def handle(req, body, host):
    data = b"".join(body)
    host.log("info", "served " + req["url"])
    return 200, [("content-type", "text/plain"), ("x-len", str(len(data)))], [req["url"].encode(), b"|", data]
"""

STREAM = """
import hashlib
def handle(req, body, host):
    h = hashlib.sha256()
    n = 0
    for chunk in body:
        h.update(chunk)
        n += len(chunk)
    def out():
        for i in range(64):
            yield bytes([i % 251]) * 16384
    return 200, [("x-sha", h.hexdigest()), ("x-n", str(n))], out()
"""

CRASH_MIDWAY = """
import time
def handle(req, body, host):
    if req["url"].endswith("/ok"):
        return 200, [], [b"fine"]
    def out():
        yield b"x" * 1000
        time.sleep(0.2)
        raise SystemExit
    return 200, [("content-length", "100000")], out()
"""

SPIN = """
def handle(req, body, host):
    if req["url"].endswith("/spin"):
        while True:
            pass
    return 200, [], [b"alive"]
"""

SLOW = """
import time
def handle(req, body, host):
    time.sleep(1.0)
    return 200, [], [b"slow done"]
"""


def test_deploy_and_route_by_host(daemon):
    daemon.deploy("hello", ECHO, PY, filename="w.py")
    r = daemon.request("hello", "/a/b?c=1&d=%20")
    assert r.status_code == 200
    assert r.text == f"http://{daemon.host_header('hello')}/a/b?c=1&d=%20|"
    r = daemon.request("hello", "/post", method="POST", body=b"payload")
    assert r.text.endswith("|payload") and r.headers["x-len"] == "7"
    lines = [line["message"] for line in daemon.logs("hello")]
    assert any(m.startswith("served http://") for m in lines)


def test_unknown_function_and_bad_host(daemon):
    r = daemon.request("missing", "/")
    assert r.status_code == 404
    assert r.json() == {"error": "function not found", "function": "missing"}
    r = httpx.get(daemon.data_url + "/", headers={"host": "127.0.0.1"})
    assert r.status_code == 404 and r.json()["function"] is None


def test_bad_deploys_keep_what_is_stored(daemon):
    daemon.deploy("keep", ECHO, PY, filename="w.py")
    r = daemon.deploy("keep", ECHO, {"runtime": "nope"}, check=False)
    assert r.status_code == 422
    assert any("$.profile.runtime" in e for e in r.json()["errors"]), r.text
    r = daemon.deploy("keep", "def handle(:\n", PY, filename="w.py", check=False)
    assert r.status_code == 422 and "w.py:1" in r.text
    r = daemon.deploy("keep", ECHO, {**PY, "worker": {"maxActivateRequests": "x"}}, check=False)
    assert r.status_code == 422 and "$.profile.worker.maxActivateRequests" in r.text
    assert daemon.request("keep", "/still").text.endswith("/still|")


def test_streaming_bodies_both_ways(daemon):
    daemon.deploy("stream", STREAM, PY, filename="w.py")
    payload = bytes(i % 251 for i in range(3 * 1024 * 1024 + 7))

    def gen():
        for i in range(0, len(payload), 100_000):
            yield payload[i : i + 100_000]

    port = daemon.data_url.rsplit(":", 1)[1]
    r = httpx.post(
        daemon.data_url + "/up", content=gen(), headers={"host": f"stream.localhost:{port}"}, timeout=60
    )
    assert r.status_code == 200
    import hashlib

    assert r.headers["x-n"] == str(len(payload))
    assert r.headers["x-sha"] == hashlib.sha256(payload).hexdigest()
    assert r.content == b"".join(bytes([i % 251]) * 16384 for i in range(64))


def test_stream_failing_midway_aborts_the_connection(daemon):
    daemon.deploy("crashy", CRASH_MIDWAY, PY, filename="w.py")
    with pytest.raises(httpx.RemoteProtocolError):
        daemon.request("crashy", "/")
    # The instance is replaced and the function answers again.
    r = daemon.request("crashy", "/ok")
    assert r.status_code == 200 and r.text == "fine"
    assert any("exited" in line["message"] for line in daemon.logs("crashy"))


def test_cpu_time_limit_kills_the_instance(daemon):
    daemon.deploy("spin", SPIN, {**PY, "worker": {"cpuTimeLimitMs": 300}}, filename="w.py")
    assert daemon.request("spin", "/").text == "alive"
    t0 = time.monotonic()
    r = daemon.request("spin", "/spin", timeout=30)
    elapsed = time.monotonic() - t0
    assert 500 <= r.status_code < 600
    assert "CPU time limit exceeded" in r.text
    assert "/work" not in r.text and "Traceback" not in r.text
    assert elapsed < 10
    assert daemon.request("spin", "/").text == "alive"
    assert any("CPU time limit exceeded" in line["message"] for line in daemon.logs("spin"))
    metrics = daemon.control("GET", "/metrics").text
    assert 'noslate_cpu_limit_kills_total{function="spin"} 1.0' in metrics


def test_kill9_then_restart_serves_every_function(daemon):
    for name in ("one", "two"):
        daemon.deploy(name, ECHO, PY, filename="w.py")
    daemon.deploy("one", ECHO.replace("served", "v2 served"), PY, filename="w.py")
    assert daemon.request("one", "/").status_code == 200
    worker_pids = [i["pid"] for i in daemon.control("GET", "/v1/instances").json()["instances"]]
    assert worker_pids and all(worker_pids)
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.proc.wait(10)
    daemon.start()
    for name in ("one", "two"):
        r = daemon.request(name, "/again")
        assert r.status_code == 200, r.text
    assert "v2 served" in daemon.logs("one")[-1]["message"]
    time.sleep(0.5)
    for pid in worker_pids:  # no orphan worker survived the kill -9
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text().lower()


def test_sigterm_drains_in_flight_requests(daemon):
    daemon.deploy("slow", SLOW, PY, filename="w.py")
    assert daemon.request("slow", "/").text == "slow done"  # instance warm
    result = {}

    def call():
        result["r"] = daemon.request("slow", "/inflight")

    t = threading.Thread(target=call)
    t.start()
    # SIGTERM only once the request is really in flight (a fixed sleep raced on a loaded box).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        instances = daemon.control("GET", "/v1/instances").json()["instances"]
        if any(i["function"] == "slow" and i["active"] > 0 for i in instances):
            break
        time.sleep(0.02)
    else:
        pytest.fail("the request never became active")
    daemon.proc.send_signal(signal.SIGTERM)
    t.join(20)
    assert result["r"].status_code == 200 and result["r"].text == "slow done"
    assert daemon.proc.wait(20) == 0
    with socket.socket() as s:
        port = int(daemon.data_url.rsplit(":", 1)[1])
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert not (daemon.state_dir / "daemon.json").exists()


def test_new_version_takes_new_requests(daemon):
    daemon.deploy("ver", ECHO.replace("served", "v1"), PY, filename="w.py")
    daemon.request("ver", "/")
    daemon.deploy("ver", "def handle(req, body, host):\n    return 200, [], [b'v2']\n", PY, filename="w.py")
    assert daemon.request("ver", "/").text == "v2"


def test_metrics_and_daemon_json(daemon):
    daemon.deploy("m", ECHO, PY, filename="w.py")
    daemon.request("m", "/")
    info = json.loads((daemon.state_dir / "daemon.json").read_text())
    assert info["pid"] == daemon.pid and info["data_url"] == daemon.data_url
    text = daemon.control("GET", "/metrics").text
    assert 'noslate_requests_total{function="m",status="200"} 1.0' in text
    assert "noslate_request_duration_seconds_bucket" in text


def test_an_instance_dying_before_it_read_its_request_is_retried_once(daemon, tmp_path):
    """Requests go to a ``serving`` process (an adopted warmfork spare) before its Hello;
    one that dies before the Hello never read anything, so the request goes to the next
    instance instead of failing. A second death in a row is the client's 502."""
    flag = tmp_path / "die-once"
    flag.write_text("x")
    env = {"TESTKIT_SERVING": "1", "TESTKIT_DIE_BEFORE_HELLO_ONCE": str(flag)}
    environments = [{"key": k, "value": v} for k, v in env.items()]
    daemon.deploy("unread", ECHO, {**PY, "environments": environments}, filename="w.py")
    r = daemon.request("unread", "/first")
    assert r.status_code == 200, r.text
    assert r.text.endswith("/first|")
    assert not flag.exists(), "the first instance should have died before its Hello"
    lines = [line["message"] for line in daemon.logs("unread")]
    assert any(m.startswith("served http://") for m in lines)
