"""plugins/outbound_http: the policy, and fetch() through a real daemon to a local server."""

from __future__ import annotations

import http.server
import threading

import pytest

from plugins.outbound_http.config import OutboundConfig
from plugins.outbound_http.policy import Policy

PY = {"runtime": "pytest"}

FETCHER = """
def handle(req, body, host):
    target = req["url"].split("?u=", 1)[1]
    try:
        hdrs = [("x-a", "1"), ("content-length", "9")]
        status, headers, data = host.fetch("POST", target, hdrs, b"sent-body")
    except RuntimeError as exc:
        return 200, [], [b"ERR " + str(exc).encode()]
    return 200, [], [b"%d " % status, data]
"""


def test_default_policy_denies_internal_networks():
    policy = Policy(OutboundConfig())
    for addr in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ):
        assert policy.check_address(addr), addr
    assert policy.check("example.com", ["93.184.216.34"]) is None
    assert policy.check("example.com", ["93.184.216.34", "10.0.0.1"])  # every address must pass


def test_allow_and_deny_lists():
    policy = Policy(
        OutboundConfig(allow_cidrs=["127.0.0.1/32"], deny_hosts=["*.evil.test"], deny_cidrs=["8.8.8.0/24"])
    )
    assert policy.check("localhost", ["127.0.0.1"]) is None
    assert policy.check("a.evil.test", ["1.1.1.1"]) == "host a.evil.test is denied"
    assert policy.check("dns", ["8.8.8.8"])
    only = Policy(OutboundConfig(allow_hosts=["api.example.com"]))
    assert only.check("other.example.com", ["1.1.1.1"]) == "host other.example.com is not in the allow list"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        data = b"upstream got " + body + b" host=" + self.headers["host"].encode()
        self.send_response(201)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/path"
    server.shutdown()


def test_fetch_denied_by_default_and_allowed_when_configured(daemon_factory, upstream):
    denied = daemon_factory()
    denied.deploy("f", FETCHER, PY, filename="w.py")
    r = denied.request("f", "/?u=" + upstream)
    assert r.text.startswith("ERR TypeError: fetch refused:") and "denied network" in r.text
    assert any("refused" in line["message"] for line in denied.logs("f"))
    allowed = daemon_factory({"plugins": {"outbound_http": {"allow_cidrs": ["127.0.0.0/8", "::1/128"]}}})
    allowed.deploy("f", FETCHER, PY, filename="w.py")
    r = allowed.request("f", "/?u=" + upstream)
    port = upstream.split(":")[2].split("/")[0]
    assert r.text == f"201 upstream got sent-body host=localhost:{port}"


def test_subrequest_limit(daemon_factory, upstream):
    d = daemon_factory(
        {"plugins": {"outbound_http": {"allow_cidrs": ["127.0.0.0/8", "::1/128"], "max_subrequests": 2}}}
    )
    code = FETCHER.replace(
        "    try:\n", '    host.fetch("POST", target)\n    host.fetch("POST", target)\n    try:\n'
    )
    d.deploy("g", code, PY, filename="w.py")
    r = d.request("g", "/?u=" + upstream)
    assert "more than 2 subrequests" in r.text


def test_hooks_through_the_plugin_manager():
    """noslate_outbound_check / noslate_outbound_performer / noslate_route via pluggy."""
    from kernel.config import build_config
    from kernel.interfaces import InboundRequest, OutboundRequest

    config, pm = build_config(
        {"plugins": {"enabled": ["routing_host", "outbound_http"], "outbound_http": {"max_subrequests": 1}}}
    )
    pm.hooks.configure(config)
    req = OutboundRequest("GET", "http://x.test/", [], "f", "f-1", ("10.0.0.1",), 1)
    (rejection,) = [r for r in pm.pm.hook.noslate_outbound_check(request=req, function=None) if r]
    assert rejection.status == 403 and "10.0.0.1" in rejection.message
    ok = OutboundRequest("GET", "http://x.test/", [], "f", "f-1", ("93.184.216.34",), 1)
    assert pm.hooks.outbound_check(request=ok, function=None) is None
    over = OutboundRequest("GET", "http://x.test/", [], "f", "f-1", ("93.184.216.34",), 2)
    assert pm.hooks.outbound_check(request=over, function=None).reason == "subrequest-limit"
    assert pm.pm.hook.noslate_outbound_performer(function=None) is not None
    route = pm.pm.hook.noslate_route(request=InboundRequest("GET", "/a?b=1", [], "hello.localhost"))
    assert (route.function, route.target) == ("hello", "/a?b=1")
    assert pm.hooks.route(request=InboundRequest("GET", "/", [], "127.0.0.1")) is None
