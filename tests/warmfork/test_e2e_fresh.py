"""After fork: fresh randomness and a fresh time origin in every instance of one seed
(real daemon, real V8; disposable mode gives a new instance per request)."""

from __future__ import annotations

import time
from typing import Any

from . import e2e

FACTS = """
const atInit = Math.random();
addEventListener('fetch', (event) => {
  const words = new Uint32Array(4);
  crypto.getRandomValues(words);
  event.respondWith(Response.json({
    random: [Math.random(), Math.random(), Math.random()],
    crypto: Array.from(words),
    uuid: crypto.randomUUID(),
    now: performance.now(),
    origin: performance.timeOrigin,
    date: Date.now(),
    atInit,
  }));
});
"""


def test_instances_of_one_seed_draw_distinct_random_sequences(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("rnd", FACTS, {"worker": {"disposable": True}})
    (seed,) = e2e.wait_for("the seed", lambda: e2e.seeds(d, "rnd"))
    facts = []
    for _ in range(6):
        resp = d.request("rnd")
        assert resp.status_code == 200, resp.text
        facts.append(resp.json())
    assert e2e.warmfork_stats(d)["forks"] >= 6, "every request should have forked a new instance"
    assert [s["pid"] for s in e2e.seeds(d, "rnd")] == [seed["pid"]], "one seed served them all"
    randoms = [tuple(f["random"]) for f in facts]
    cryptos = [tuple(f["crypto"]) for f in facts]
    assert len(set(randoms)) == len(facts), randoms
    assert len({r for seq in randoms for r in seq}) == 3 * len(facts)
    assert len(set(cryptos)) == len(facts), cryptos
    assert len({f["uuid"] for f in facts}) == len(facts)
    # documented limitation: a value drawn during the seed's init is shared by its forks
    assert len({f["atInit"] for f in facts}) == 1


def test_a_new_instance_of_an_old_seed_has_a_fresh_time_origin(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("clock", FACTS, {"worker": {"disposable": True}})
    e2e.wait_for("the seed", lambda: e2e.seeds(d, "clock"))
    seed_age = 2.5
    time.sleep(seed_age)  # the seed (and the context it created) is now seconds old
    for _ in range(3):
        before = time.time() * 1000
        f = d.request("clock").json()
        after = time.time() * 1000
        # performance.now() counts from the instance's start, not the seed's
        assert 0 <= f["now"] < seed_age * 1000 / 2, f
        assert before - 1000 <= f["origin"] <= after, f
        assert before - 50 <= f["date"] <= after + 50, f


COUNTER = """
let handled = 0;
addEventListener('fetch', (event) => {
  handled += 1;
  console.log('handled ' + handled);
  event.respondWith(Response.json({ handled }));
});
"""


def test_warmed_spares_never_run_user_code_before_their_request(daemon_factory: Any) -> None:
    """A spare runs the runtime's request path ahead of time (``worker.warm``), never the
    function's handler: every fresh instance sees its first request as its first, and
    the log has one line per request. Taken spares get their request before their
    Hello (``WorkerProcess.serving``) and still report their own pid."""
    d = e2e.start(daemon_factory, spares=1, refill_delay=0.0)
    d.deploy("count", COUNTER, {"worker": {"disposable": True}})
    e2e.wait_for("a spare", lambda: any(s.get("spares") for s in e2e.seeds(d, "count")))
    bodies = []
    for _ in range(5):
        e2e.wait_for("a spare", lambda: any(s.get("spares") for s in e2e.seeds(d, "count")))
        resp = d.request("count")
        assert resp.status_code == 200, resp.text
        bodies.append(resp.json())
    assert [b["handled"] for b in bodies] == [1] * 5
    assert e2e.warmfork_stats(d)["spares_used"] >= 5
    e2e.wait_for("all five", lambda: len([x for x in d.logs("count") if "handled" in x["message"]]) >= 5)
    lines = [x["message"] for x in d.logs("count") if "handled" in x["message"]]
    assert lines == ["handled 1"] * 5


def test_a_taken_spare_is_listed_with_its_own_pid(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory, spares=1)
    d.deploy("keep", COUNTER)
    (seed,) = e2e.wait_for("a spare", lambda: [s for s in e2e.seeds(d, "keep") if s.get("spares")])
    spare_pid = seed["spares"][0]
    assert d.request("keep").json()["handled"] == 1
    assert e2e.warmfork_stats(d)["spares_used"] == 1
    (inst,) = e2e.instances(d, "keep")
    assert inst["pid"] == spare_pid and e2e.ppid(spare_pid) == seed["pid"]
    assert d.request("keep").json()["handled"] == 2  # the same instance, not disposable


PATCHED = """
let calls = 0;
const get = Headers.prototype.get;
Headers.prototype.get = function (...args) { calls += 1; return get.apply(this, args); };
addEventListener('fetch', (event) => event.respondWith(Response.json({ calls })));
"""


def test_the_warm_up_never_calls_what_user_code_replaced(daemon_factory: Any) -> None:
    """``warmRequestPath`` calls ``Headers.prototype.get`` among others: once user code
    replaced it (or any global or prototype member the warm-up touches), spares skip
    the warm-up, so the user's function is never called before a request."""
    d = e2e.start(daemon_factory, spares=1, refill_delay=0.0)
    d.deploy("patched", PATCHED, {"worker": {"disposable": True}})
    for _ in range(3):
        e2e.wait_for("a spare", lambda: any(s.get("spares") for s in e2e.seeds(d, "patched")))
        resp = d.request("patched")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"calls": 0}
    assert e2e.warmfork_stats(d)["spares_used"] >= 3
