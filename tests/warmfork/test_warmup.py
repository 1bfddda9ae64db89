"""``worker.warmup``: a seed sends its handler the warm-up requests before it forks.

Real daemon, runtime_v8 + warmfork. The handler keeps a module-level list of what it
served: a fork of a warmed seed starts with the warm-up requests in it (it inherited the
seed's heap). KV writes of the warm-up go to a scratch store, outbound fetches get a
local 503, failures and hangs are logged as warnings and the seed serves all the same.
"""

from __future__ import annotations

import json
from typing import Any

from . import e2e

HANDLER = """
const served = [];
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
async function handle(request) {
  const url = new URL(request.url);
  const warm = request.headers.get('noslate-warmup');
  const store = await noslate.kvStorages.open('s');
  const entry = {path: url.pathname, method: request.method, warm};
  if (url.pathname === '/boom') throw new Error('no render for you');
  if (url.pathname === '/hang') await new Promise(() => {});
  if (request.method === 'POST') entry.body = await request.text();
  if (warm) {
    await store.set('seen', new TextEncoder().encode('by warm-up'));
    entry.readBack = new TextDecoder().decode(await store.get('seen'));
    const r = await fetch('http://upstream.example/api');
    entry.fetch = [r.status, r.headers.get('noslate-warmup'), await r.text()];
  } else {
    const seen = await store.get('seen');
    entry.stored = seen === undefined ? null : new TextDecoder().decode(seen);
  }
  served.push(entry);
  return Response.json(served);
}
"""
WARMUP = [
    {"path": "/page?x=1"},
    {"path": "/submit", "method": "POST", "body": "hello", "headers": {"content-type": "text/plain"}},
]


def _log_line(d: Any, function: str, needle: str) -> dict[str, Any]:
    return e2e.wait_for(
        f"a log line with {needle!r}",
        lambda: next((x for x in d.logs(function) if needle in x["message"]), None),
    )


def test_forks_inherit_the_warm_up_and_nothing_leaks(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("warm", HANDLER, {"worker": {"warmup": WARMUP, "disposable": True}})
    for n in range(2):  # disposable: each request is a new fork of the seed
        resp = d.request("warm", f"/real{n}")
        assert resp.status_code == 200, resp.text
        served = resp.json()
        assert [s["path"] for s in served] == ["/page", "/submit", f"/real{n}"], served
        page, submit, real = served
        assert page["warm"] == "1" and page["method"] == "GET"
        assert submit == {**submit, "method": "POST", "body": "hello", "warm": "1"}
        # the warm-up's KV write stayed in its scratch store; its fetch never left
        assert page["readBack"] == "by warm-up"
        assert page["fetch"] == [503, "1", "outbound fetch is not available during warm-up"]
        assert real["warm"] is None and real["stored"] is None
    line = _log_line(d, "warm", "warm-up of version")
    assert line["level"] == "info", line
    assert "GET /page?x=1 200 in" in line["message"] and "POST /submit 200 in" in line["message"]
    stats = e2e.warmfork_stats(d)
    assert stats["warmup_requests"] >= 2 and stats["warmup_failures"] == 0


def test_without_warmup_forks_start_empty(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("cold-jit", HANDLER, {"worker": {"disposable": True}})
    served = d.request("cold-jit", "/only").json()
    assert [s["path"] for s in served] == ["/only"]


def test_a_failing_or_hanging_warm_up_is_a_warning_and_the_seed_serves(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    profile = {
        "worker": {
            "warmup": [{"path": "/boom"}, {"path": "/hang"}, {"path": "/fine"}],
            "initializationTimeout": 1500,
            "disposable": True,
        }
    }
    d.deploy("wobbly", HANDLER, profile)
    resp = d.request("wobbly", "/after")
    assert resp.status_code == 200, resp.text
    # /boom threw, /hang used the whole budget, /fine had no time left: none is in the list
    assert [s["path"] for s in resp.json()] == ["/after"]
    line = _log_line(d, "wobbly", "warm-up of version")
    assert line["level"] == "warning", line
    text = line["message"]
    assert "GET /boom failed: 500" in text, text
    assert "GET /hang failed: no response within the warm-up budget (1.5 s)" in text, text
    assert "GET /fine failed: no time left" in text, text
    assert all(i["role"] == "instance" for i in e2e.instances(d, "wobbly"))
    assert e2e.warmfork_stats(d)["warmup_failures"] >= 3


def test_bad_warmup_entries_are_refused_naming_the_field(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    cases = [
        ({"path": "page"}, "path must start with one '/'"),
        ({"path": "/", "method": "GE T"}, "method must be an HTTP token"),
        ({"path": "/", "headers": {"bad name": "x"}}, "not a valid header name"),
        ({"path": "/", "body": "x" * 70000}, "a warm-up body is at most 65536"),
        ({"method": "GET"}, "required field missing"),
    ]
    for entry, needle in cases:
        resp = d.control(
            "PUT",
            "/v1/functions/bad",
            json={"code": HANDLER, "filename": "w.js", "profile": {"worker": {"warmup": [entry]}}},
        )
        assert resp.status_code == 422, resp.text
        text = json.dumps(resp.json())
        assert needle in text and "warmup[0]" in text, text
