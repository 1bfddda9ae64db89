"""Operability through a real daemon: graceful drain, JSON-lines logs, queue-depth
metric, KV freed on delete, the outbound client closed at shutdown."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from .helpers import PY

STREAM_SLOW = """
import time
def handle(req, body, host):
    def out():
        for i in range(8):
            yield b"chunk%d;" % i
            time.sleep(0.25)
    return 200, [("content-type", "text/plain")], out()
"""

KV = """
def handle(req, body, host):
    host.call("kv.open", ["s", {}])
    host.call("kv.set", ["s", "k", b"v" * 1000, None])
    return 200, [], [b"stored"]
"""


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text().lower()
    except OSError:
        return False


def test_sigterm_finishes_streams_fails_queue_and_exits_clean(daemon_factory):
    d = daemon_factory(config={"server": {"grace_period": 10.0}})
    d.deploy("drain", STREAM_SLOW, {**PY, "worker": {"maxActivateRequests": 1, "replicaCountLimit": 1}})
    assert d.request("drain", "/warm").text.startswith("chunk0;")
    results: dict[str, object] = {}

    def call(key: str) -> None:
        try:
            results[key] = d.request("drain", "/" + key, timeout=30)
        except Exception as exc:
            results[key] = exc

    streaming = threading.Thread(target=call, args=("stream",))
    streaming.start()
    time.sleep(0.3)  # the stream holds the only instance
    queued = [threading.Thread(target=call, args=(f"q{i}",)) for i in range(3)]
    for t in queued:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = d.control("GET", "/metrics").text
        if 'noslate_queue_depth{function="drain"} 3.0' in metrics:
            break
        time.sleep(0.05)
    assert 'noslate_queue_depth{function="drain"} 3.0' in metrics, [
        m for m in metrics.splitlines() if "queue_depth" in m
    ]
    pids = [i["pid"] for i in d.control("GET", "/v1/instances").json()["instances"]]
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    for t in [streaming, *queued]:
        t.join(30)
    assert d.proc.wait(30) == 0, d.stderr()
    assert time.monotonic() - t0 < 10
    stream = results["stream"]
    assert isinstance(stream, httpx.Response), stream
    assert stream.status_code == 200 and stream.text == "".join(f"chunk{i};" for i in range(8))
    for i in range(3):
        r = results[f"q{i}"]
        assert isinstance(r, httpx.Response), r
        assert r.status_code == 503, r.text
        assert r.json()["reason"] == "shutting_down" and r.headers.get("retry-after")
    time.sleep(0.3)
    assert pids and not [p for p in pids if _alive(p)]
    assert "Traceback" not in d.stderr()


def test_json_lines_daemon_log(daemon_factory):
    d = daemon_factory(config={"logging": {"json": True}})
    d.deploy("fail", "def handle(req, body, host):\n    raise ValueError('bad')\n", PY, filename="w.py")
    assert d.request("fail", "/").status_code >= 500
    assert d.stop() == 0
    lines = [line for line in d.stderr().splitlines() if line.strip()]
    assert lines
    records = []
    for line in lines:
        if not line.startswith("{"):
            continue  # worker processes write their own stderr
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert isinstance(record["time"], float) and record["level"] in ("debug", "info", "warning", "error")
        records.append(record)
    messages = [r["message"] for r in records]
    assert any(m.startswith("serving: data plane") for m in messages)
    assert any(r["level"] == "error" and "[fail" in r["message"] for r in records), messages
    assert any("draining" in m for m in messages)


def test_deleting_a_function_frees_its_kv_namespace(daemon_factory):
    d = daemon_factory()
    d.deploy("kva", KV, PY, filename="w.py")
    d.deploy("kvb", KV, {**PY, "namespace": "shared", "namespaceGrants": ["kvc"]}, filename="w.py")
    d.deploy("kvc", KV, {**PY, "namespace": "shared"}, filename="w.py")
    for name in ("kva", "kvb", "kvc"):
        assert d.request(name, "/").text == "stored"

    def namespaces() -> set[str]:
        data = d.control("GET", "/v1/kv").json()
        text = json.dumps(data)
        return {ns for ns in ("kva", "shared") if f'"{ns}"' in text}

    assert namespaces() == {"kva", "shared"}
    assert d.control("DELETE", "/v1/functions/kva").status_code in (200, 204)
    assert d.control("DELETE", "/v1/functions/kvb").status_code in (200, 204)
    assert namespaces() == {"shared"}  # kvc still uses "shared"
    assert d.control("DELETE", "/v1/functions/kvc").status_code in (200, 204)
    assert namespaces() == set()


def test_outbound_client_closed_and_no_errors_at_shutdown(daemon_factory):
    d = daemon_factory()
    assert d.stop() == 0
    assert "Traceback" not in d.stderr()
    assert not os.path.exists(d.state_dir / "daemon.json")
