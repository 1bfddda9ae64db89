"""The data plane's edge: slow uploads get 408 and free their slot; CL+TE gets 400.

Before: 30 uploads at 1 byte per 15 s held a body-reading function's instances for
~60 s, and a request with both Content-Length and Transfer-Encoding was accepted (a
desync risk behind a proxy that reads Content-Length first).
"""

from __future__ import annotations

import socket
import threading
import time

import conftest
import pytest
from isolation_e2e.support import ISOLATION, skip_reason, start_daemon
from robustness.helpers import ECHO, PY, raw, read_all, status_of


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory):
    config = {
        "server": {"body_read_timeout": 1.0},
        "plugins": {"scaler_reactive": {"breaker": {"enabled": False}}},
    }
    tmp = tmp_path_factory.mktemp("edge")
    if not skip_reason():  # as root: with every isolation plugin on
        daemon = start_daemon(tmp, ISOLATION, top={"server": config["server"]}, plugins=["test_runtime"])
    else:
        daemon = conftest.Daemon(tmp, config, conftest.DEFAULT_PLUGINS, {}).start()
    daemon.deploy("echo", ECHO, {**PY, "worker": {"maxActivateRequests": 2, "replicaCountLimit": 1}})
    yield daemon
    daemon.stop()


def _slow_upload(d, results: list[tuple[int, float]]) -> None:
    host, port = d.data_url.removeprefix("http://").rsplit(":", 1)
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(
            f"POST / HTTP/1.1\r\nHost: {d.host_header('echo')}\r\nContent-Length: 100\r\n\r\nx".encode()
        )
        results.append((status_of(read_all(s, 20)), time.monotonic() - t0))


def test_slow_uploads_get_408_and_free_their_slot(d) -> None:
    results: list[tuple[int, float]] = []
    threads = [threading.Thread(target=_slow_upload, args=(d, results)) for _ in range(30)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # the function (2 requests at a time, one instance) still serves others
    ok = [d.request("echo", method="POST", body=b"fast", timeout=30) for _ in range(3)]
    for t in threads:
        t.join(30)
    assert [r.status_code for r in ok] == [200, 200, 200]
    # each slow upload holds a slot for body_read_timeout (1 s), two at a time: most get
    # 408 in turn, the last ones may wait out the queue deadline (10 s) and get 503
    assert len(results) == 30 and {status for status, _ in results} <= {408, 503}, results
    assert sum(status == 408 for status, _ in results) >= 10, results
    assert max(seconds for _, seconds in results) < 20
    lines = [x["message"] for x in d.logs("echo")]
    assert any("[server] body_read_timeout" in m for m in lines)


def test_content_length_with_transfer_encoding_is_refused(d) -> None:
    request = (
        f"POST / HTTP/1.1\r\nHost: {d.host_header('echo')}\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
    ).encode()
    response = raw(d.data_url, request)
    assert status_of(response) == 400, response[:300]
    assert b"both Content-Length and Transfer-Encoding" in response
    assert d.request("echo", method="POST", body=b"fine").status_code == 200
