"""Stuck, evasive and tampering instances are recycled or refused (real daemon, runtime_v8).

Before: ``Atomics.wait`` blocked an instance at 0 CPU, out of the watchdog's sight,
and after the 504 the instance stayed ``ready`` and got every later request; a timer
burning 1.3 s of every 3 s in a reserved instance was never stopped; overwriting the
runtime's symbol-keyed state on a Response handed the host a BigInt status (a V8
fatal error), a 101 status, non-string header names or hop-by-hop headers.
"""

from __future__ import annotations

import time
from pathlib import Path

import conftest
import httpx
import pytest
from isolation_e2e.support import ISOLATION, skip_reason, start_daemon

PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]
PROFILES = {"aworker": {"runtime": "aworker"}}
if conftest.plugin_available("runtime_node"):
    PLUGINS.append("runtime_node")
    PROFILES["nodejs"] = {"runtime": "nodejs"}


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory):
    """As root, with every isolation plugin on (else without: the same behaviour)."""
    tmp = tmp_path_factory.mktemp("recycle")
    server = {"response_timeout": 1.0, "idle_cpu_window": 3.0, "idle_cpu_share": 0.1}
    if not skip_reason():
        daemon = start_daemon(tmp, ISOLATION, top={"server": server}, plugins=PLUGINS)
    else:
        config = {"server": server, "plugins": {"scaler_reactive": {"breaker": {"enabled": False}}}}
        daemon = conftest.Daemon(tmp, config, PLUGINS, {}).start()
    yield daemon
    daemon.stop()


def _instances(d, name: str) -> list[dict]:
    return [i for i in d.control("GET", "/v1/instances").json()["instances"] if i["function"] == name]


def test_atomics_wait_throws_instead_of_blocking(d) -> None:
    code = """
export default { fetch() {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  try { Atomics.wait(cell, 0, 0); return new Response("blocked and came back"); }
  catch (e) { return new Response(e.name + ": " + e.message); }
} };
"""
    d.deploy("waits", code, filename="w.mjs")
    text = d.request("waits", timeout=10).text
    assert text.startswith("TypeError: Atomics.wait cannot be called in this context"), text


def test_an_instance_whose_request_timed_out_is_replaced(d) -> None:
    code = """
let id;  // drawn in the instance (top-level values are shared by every fork of a seed)
export default { fetch(req) {
  id ??= crypto.randomUUID();
  if (new URL(req.url).pathname === "/hang") return new Promise(() => {});
  return new Response(id);
} };
"""
    d.deploy("hangs", code, {"worker": {"replicaCountLimit": 2}}, filename="w.mjs")
    first = d.request("hangs", "/").text
    r = d.request("hangs", "/hang", timeout=10)
    assert r.status_code == 504
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = d.request("hangs", "/")
        assert after.status_code == 200
        if after.text != first:
            break
        time.sleep(0.1)
    assert after.text != first, "the timed-out instance still gets requests"
    lines = [x["message"] for x in d.logs("hangs")]
    assert any("instance retired (response-timeout)" in m for m in lines), lines


def test_background_burn_of_a_reserved_instance_is_stopped(d) -> None:
    code = """
setInterval(() => { const end = Date.now() + 1300; while (Date.now() < end) {} }, 3000);
addEventListener('fetch', (e) => e.respondWith(new Response('ok')));
"""
    d.deploy("burns", code, {"worker": {"reservationCount": 1}})
    assert d.request("burns").text == "ok"
    (first,) = [i["id"] for i in _instances(d, "burns")]
    deadline = time.monotonic() + 20
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [x["message"] for x in d.logs("burns")]
        if any("idle CPU limit exceeded" in m for m in lines):
            break
        time.sleep(0.2)
    assert any("idle CPU limit exceeded" in m and "[server] idle_cpu_share" in m for m in lines), lines
    assert any("it burned CPU with no request in flight" in m for m in lines), lines
    deadline = time.monotonic() + 10  # the reservation brings up a replacement
    while time.monotonic() < deadline and not [i for i in _instances(d, "burns") if i["id"] != first]:
        time.sleep(0.1)
    assert [i for i in _instances(d, "burns") if i["id"] != first]


TAMPER = """
export default { fetch(req) {
  const what = new URL(req.url).pathname.slice(1);
  const r = new Response("tampered", { headers: { "x-ok": "1" } });
  const syms = (o) => Object.getOwnPropertySymbols(o);
  const state = syms(r).map((s) => r[s]).find((v) => v && typeof v === "object" && "status" in v);
  if (what === "bigint") state.status = 200n;
  if (what === "status101") state.status = 101;
  if (what === "status999") state.status = 999;
  const headers = state.headers;
  const list = syms(headers).map((s) => headers[s]).find(Array.isArray);
  if (what === "name-number") list.push([42, "x"]);
  if (what === "name-space") list.push(["bad name", "x"]);
  if (what === "value-crlf") list.push(["x-a", "a\\r\\nset-cookie: evil=1"]);
  if (what === "value-wide") list.push(["x-a", "\\u2028"]);
  if (what === "hop") { list.push(["connection", "close"]); list.push(["transfer-encoding", "chunked"]); }
  return r;
} };
"""


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("bigint", "invalid response status 200n"),
        ("status101", "invalid response status 101"),
        ("status999", "invalid response status 999"),
        ("name-number", "names and values must be strings"),
        ("name-space", 'invalid response header name "bad name"'),
        ("value-crlf", 'invalid value for response header "x-a"'),
        ("value-wide", 'invalid value for response header "x-a"'),
    ],
)
@pytest.mark.parametrize("runtime", ["aworker", "nodejs"])
def test_tampered_responses_get_a_type_error(d, case: str, why: str, runtime: str) -> None:
    if runtime not in PROFILES:
        pytest.skip("runtime_node is not built")
    d.deploy("tamper", TAMPER, PROFILES[runtime], filename="w.mjs")
    r = d.request("tamper", f"/{case}", timeout=10)
    assert r.status_code == 500, r.text
    assert "response is invalid" in r.json()["error"]
    assert any(x["message"].startswith("TypeError: ") and why in x["message"] for x in d.logs("tamper"))
    assert d.request("tamper", "/none").text == "tampered"  # the instance lives on


def test_hop_by_hop_headers_never_reach_the_client(d) -> None:
    d.deploy("tamper", TAMPER, filename="w.mjs")
    r = d.request("tamper", "/hop", timeout=10)
    assert r.status_code == 200 and r.text == "tampered"
    assert r.headers["x-ok"] == "1"
    assert "connection" not in r.headers or r.headers["connection"] != "close"
    assert "transfer-encoding" not in r.headers


def test_the_kernel_checks_heads_itself() -> None:
    from kernel.httpcheck import end_to_end, head_problem

    assert head_problem(200, [("x-a", "b")]) is None
    assert "status 101" in head_problem(101, [])
    assert "status True" in head_problem(True, [])
    assert "not a token" in head_problem(200, [("a b", "c")])
    assert "CR, LF" in head_problem(200, [("a", "x\ny")])
    assert end_to_end([("Connection", "close"), ("a", "b")]) == [("a", "b")]
    _ = (Path, httpx)


BOMB = """
export default { async fetch(req) {
  const body = req.body.pipeThrough(new DecompressionStream("gzip"));
  let total = 0;
  try {
    for await (const chunk of body) total += chunk.length;  // read and discarded
    return new Response("inflated " + total);
  } catch (e) { return new Response(e.name + ": " + e.message); }
} };
"""
HUGE_KEY = """
export default { async fetch() {
  const kv = await noslate.kvStorages.open("s");
  try { await kv.set("k".repeat(10 * 1024 * 1024), "v"); return new Response("stored"); }
  catch (e) { return new Response(e.name + ": " + e.message); }
} };
"""


@pytest.mark.parametrize("runtime", ["aworker", "nodejs"])
def test_gzip_bomb_and_huge_kv_key_give_js_errors(d, runtime: str) -> None:
    import gzip

    if runtime == "nodejs" and not conftest.plugin_available("runtime_node"):
        pytest.skip("runtime_node is not built")
    profile = {"runtime": runtime, "resourceLimit": {"memory": 256 << 20}}
    bomb = gzip.compress(b"\0" * (1 << 30), compresslevel=9)  # 1 MiB in, 1 GiB out
    d.deploy("bomb", BOMB, profile, filename="w.mjs")
    r = d.request("bomb", method="POST", body=bomb, timeout=30)
    assert r.status_code == 200, r.text
    assert r.text.startswith("TypeError: Decompression failed: the data inflates to more than 64 MiB"), r.text
    small = gzip.compress(b"hello " * 1000)
    assert d.request("bomb", method="POST", body=small, timeout=30).text == "inflated 6000"
    d.deploy("hugekey", HUGE_KEY, profile, filename="w.mjs")
    text = d.request("hugekey", timeout=30).text
    assert text.startswith("TypeError: kv.set: the arguments are too large"), text
    assert d.request("hugekey", timeout=30).status_code == 200  # the same instance lives on
