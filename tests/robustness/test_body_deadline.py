"""``[server] body_idle_timeout``: a streaming response that goes silent is aborted.

Real daemon, real runtime_v8 worker. A ReadableStream that enqueues one chunk and
then never again must abort the client connection (not end it cleanly), free the
instance, be counted and logged; a slow but steady stream must complete.
"""

from __future__ import annotations

import time

import httpx
import pytest

WORKER = """
const enc = new TextEncoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default { fetch(req) {
  const path = new URL(req.url).pathname;
  if (path === '/stall') {
    // one chunk, then silence (no pull: the stream stays open forever)
    return new Response(new ReadableStream({ start(c) { c.enqueue(enc.encode('first|')); } }));
  }
  if (path === '/slow') {
    let n = 0;
    return new Response(new ReadableStream({ async pull(c) {
      if (n > 0) await sleep(300);
      if (n < 7) c.enqueue(enc.encode('tick' + n++ + '|')); else c.close();
    } }));
  }
  return new Response('ok ' + path);
} };
"""


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    import conftest

    if not conftest.plugin_available("runtime_v8"):
        pytest.skip("plugins/runtime_v8 is not installed")
    plugins = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8"]
    config = {
        "server": {"body_idle_timeout": 1.0, "response_timeout": 10.0},
        "plugins": {"scaler_reactive": {"breaker": {"max_load": 10000.0}}},
    }
    daemon = conftest.Daemon(tmp_path_factory.mktemp("bodydeadline"), config, plugins, {})
    daemon.start()
    # one instance, one request at a time: a leaked slot would block the next request
    profile = {"worker": {"maxActivateRequests": 1}, "resourceLimit": {}}
    daemon.deploy("stream", WORKER, profile, filename="stream.js")
    yield daemon
    try:
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill9()


def _stream(d, path: str) -> tuple[int, bytes, Exception | None, float]:
    """GET ``path`` streaming; (status, bytes received, error, seconds)."""
    port = d.data_url.rsplit(":", 1)[1]
    got, error, status = b"", None, 0
    t0 = time.monotonic()
    with httpx.Client(timeout=httpx.Timeout(15.0)) as client:
        try:
            with client.stream("GET", d.data_url + path, headers={"host": f"stream.localhost:{port}"}) as r:
                status = r.status_code
                for chunk in r.iter_raw():
                    got += chunk
        except httpx.HTTPError as exc:
            error = exc
    return status, got, error, time.monotonic() - t0


def test_silent_stream_is_aborted_and_the_function_keeps_serving(d):
    assert d.request("stream", "/warm").text == "ok /warm"
    status, got, error, seconds = _stream(d, "/stall")
    assert status == 200 and got == b"first|", (status, got)
    # the connection was cut, not ended with a terminating chunk
    assert isinstance(error, httpx.RemoteProtocolError), repr(error)
    assert seconds < 8, seconds  # deadline 1 s; generous bound for a loaded 2-core box
    # the lease was released: with maxActivateRequests = 1 this would otherwise queue
    for i in range(3):
        r = d.request("stream", f"/after{i}", timeout=15)
        assert r.status_code == 200 and r.text == f"ok /after{i}", r.text
    messages = [line["message"] for line in d.logs("stream")]
    assert any("body_idle_timeout" in m and "1 s" in m for m in messages), messages[-10:]
    metrics = d.control("GET", "/metrics").text
    assert 'noslate_rejections_total{function="stream",reason="body_idle_timeout"} 1.0' in metrics


def test_slow_but_alive_stream_completes(d):
    status, got, error, seconds = _stream(d, "/slow")
    assert error is None, repr(error)
    assert status == 200 and got == b"".join(f"tick{i}|".encode() for i in range(7)), got
    assert seconds >= 1.5  # it really was slow: 6 gaps of 0.3 s
    assert d.request("stream", "/ok").text == "ok /ok"
