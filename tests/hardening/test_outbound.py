"""Outbound fetch: IPv6 spellings of denied networks, redirect modes, credentials on
redirects, and a stalled upstream that costs only its own function.

Real daemon (runtime_v8) and real HTTP servers on loopback (``allow_cidrs`` lets the
test reach 127.0.0.1; every other rule stays on).
"""

from __future__ import annotations

import http.server
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import conftest
import httpx
import pytest
from isolation_e2e.support import ISOLATION, skip_reason, start_daemon

from plugins.outbound_http.config import OutboundConfig
from plugins.outbound_http.policy import Policy

PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
        "64:ff9b:1::c0a8:1",  # local-use NAT64 of 192.168.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_ipv6_spellings_of_denied_ipv4_networks_are_denied(address: str) -> None:
    assert Policy(OutboundConfig()).check_address(address), address


def test_public_addresses_in_ipv6_spellings_pass() -> None:
    policy = Policy(OutboundConfig())
    for address in ("::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2606:4700::1111"):
        assert policy.check_address(address) is None, address


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    target = ""

    def do_GET(self) -> None:
        Recorder.seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("location", Recorder.target if "cross" in self.path else "/final")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = b"final"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    a = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    b = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    for s in (a, b):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    urls = (f"http://127.0.0.1:{a.server_address[1]}", f"http://127.0.0.1:{b.server_address[1]}")
    Recorder.target = urls[1] + "/other"
    yield urls
    for s in (a, b):
        s.shutdown()


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[conftest.Daemon]:
    config = {
        "plugins": {
            "outbound_http": {
                "allow_cidrs": ["127.0.0.1/32"],
                "max_concurrent_per_function": 8,
                "total_timeout": 5.0,
            },
            "scaler_reactive": {"breaker": {"enabled": False}},
        }
    }
    tmp = tmp_path_factory.mktemp("outbound")
    if not skip_reason():  # as root: with every isolation plugin on
        daemon = start_daemon(tmp, ISOLATION, config["plugins"], plugins=PLUGINS)
    else:
        daemon = conftest.Daemon(tmp, config, PLUGINS, {}).start()
    yield daemon
    daemon.stop()


FETCH = """
export default { async fetch(req) {
  const u = new URL(req.url);
  const init = JSON.parse(u.searchParams.get("init") || "{}");
  try {
    const r = await fetch(u.searchParams.get("u"), init);
    return Response.json({ status: r.status, location: r.headers.get("location"), body: await r.text() });
  } catch (e) { return Response.json({ error: e.name + ": " + e.message }); }
} };
"""


def _fetch(d: conftest.Daemon, url: str, **init: object) -> dict:
    params = {"u": url, "init": json.dumps(init)}
    r = d.request("fetcher", "/?" + httpx.QueryParams(params).__str__(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_ipv6_literal_for_loopback_is_refused_end_to_end(d, servers) -> None:
    d.deploy("fetcher", FETCH, filename="w.mjs")
    port = servers[0].rsplit(":", 1)[1]
    # 127.0.0.2 is outside the test's allow list (127.0.0.1/32); only loopback spellings
    # go end to end here (NAT64 and 6to4 ones are covered by the policy test above)
    for host in ("[::127.0.0.2]", "[::ffff:127.0.0.2]", "[::ffff:7f00:2]"):
        out = _fetch(d, f"http://{host}:{port}/x")
        assert "fetch refused" in out.get("error", ""), (host, out)


def test_redirect_modes(d, servers) -> None:
    d.deploy("fetcher", FETCH, filename="w.mjs")
    follow = _fetch(d, servers[0] + "/redirect")
    assert (follow["status"], follow["body"]) == (200, "final")
    manual = _fetch(d, servers[0] + "/redirect", redirect="manual")
    assert (manual["status"], manual["location"]) == (302, "/final")
    error = _fetch(d, servers[0] + "/redirect", redirect="error")
    assert error["error"].startswith("TypeError: fetch: redirected to /final"), error


def test_credentials_are_dropped_on_cross_origin_redirects(d, servers) -> None:
    d.deploy("fetcher", FETCH, filename="w.mjs")
    secret = {"authorization": "Bearer s3cret", "cookie": "session=1", "x-keep": "yes"}
    Recorder.seen.clear()
    assert _fetch(d, servers[0] + "/redirect-same", headers=secret)["status"] == 200
    same = Recorder.seen[-1]
    assert (
        same["path"] == "/final"
        and same["authorization"] == "Bearer s3cret"
        and same["cookie"] == "session=1"
    )
    Recorder.seen.clear()
    assert _fetch(d, servers[0] + "/redirect-cross", headers=secret)["status"] == 200
    cross = Recorder.seen[-1]
    assert cross["path"] == "/other" and cross["x-keep"] == "yes"
    assert "authorization" not in cross and "cookie" not in cross, cross


FAN_OUT = """
export default { async fetch(req) {
  const u = new URL(req.url).searchParams.get("u");
  const all = await Promise.allSettled(Array.from({ length: 50 }, () => fetch(u)));
  return new Response(all.filter((r) => r.status === "rejected").length + " failed");
} };
"""


def test_a_stalled_upstream_costs_only_its_own_function(d) -> None:
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(2048)  # accepts (in the kernel's backlog) and never answers
    port = black_hole.getsockname()[1]
    d.deploy("fan", FAN_OUT, {"worker": {"maxActivateRequests": 30}}, filename="w.mjs")
    d.deploy("calm", "export default { fetch() { return new Response('calm'); } };", filename="w.mjs")
    assert d.request("calm").text == "calm"
    results: list[str] = []

    def fan() -> None:
        r = d.request("fan", f"/?u=http://127.0.0.1:{port}/", timeout=60)
        results.append(r.text)

    threads = [threading.Thread(target=fan) for _ in range(30)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # 1500 subrequests are now waiting on the black hole
    data, control = [], []
    try:
        for _ in range(20):
            t0 = time.perf_counter()
            assert d.request("calm", timeout=10).text == "calm"
            data.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert d.control("GET", "/v1/status").status_code == 200
            control.append(time.perf_counter() - t0)
            time.sleep(0.05)
    finally:
        for t in threads:
            t.join(60)
        black_hole.close()
    assert statistics.median(data) < 0.1 and statistics.median(control) < 0.1, (data, control)
    assert max(data) < 1.0 and max(control) < 1.0, (data, control)
    assert len(results) == 30 and all(r == "50 failed" for r in results), results[:3]
