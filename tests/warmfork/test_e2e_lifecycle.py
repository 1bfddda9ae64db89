"""Seed lifecycle through a real daemon and real V8: crash recovery, code update under
load, idle reclaim, and no orphans after ``kill -9`` of the daemon."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import httpx

from . import e2e

HELLO = "addEventListener('fetch', e => e.respondWith(new Response('{text}')));"


def test_a_crashed_seed_falls_back_to_cold_and_comes_back(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory, restart_backoff=0.5)
    d.deploy("crash", HELLO.format(text="up"), {"worker": {"disposable": True}})
    (seed,) = e2e.wait_for("the seed", lambda: e2e.seeds(d, "crash"))
    assert d.request("crash").text == "up"
    os.kill(seed["pid"], signal.SIGKILL)
    # the function keeps answering the whole time
    deadline = time.monotonic() + 20
    new = []
    while time.monotonic() < deadline and not new:
        resp = d.request("crash", timeout=30)
        assert (resp.status_code, resp.text) == (200, "up")
        new = [s for s in e2e.seeds(d, "crash") if s["pid"] != seed["pid"]]
    assert new, "no new seed appeared within 20 s"
    assert not e2e.alive(seed["pid"])
    stats = e2e.warmfork_stats(d)
    assert stats["seed_crashes"] >= 1 and stats["seeds_started"] >= 2, stats
    assert stats["cold_fallbacks"] >= 1, f"expected a cold start while the seed was down: {stats}"
    forks = stats["forks"]
    assert d.request("crash").text == "up"
    assert e2e.warmfork_stats(d)["forks"] == forks + 1, "after the restart instances fork again"
    assert any("exited" in x["message"] and "retry" in x["message"] for x in d.logs("crash"))


def test_a_code_update_replaces_the_seed_without_dropping_requests(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("upd", HELLO.format(text="v1"))
    (old,) = e2e.wait_for("the v1 seed", lambda: e2e.seeds(d, "upd"))
    seen: list[tuple[float, int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=d.data_url, headers={"host": d.host_header("upd")}, timeout=30) as client:
            while not stop.is_set():
                try:
                    resp = client.get("/")
                    seen.append((time.monotonic(), resp.status_code, resp.text))
                    if resp.status_code != 200:
                        failures.append(f"{resp.status_code} {resp.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        e2e.wait_for("traffic", lambda: len(seen) > 20)
        d.deploy("upd", HELLO.format(text="v2"))
        deployed = time.monotonic()
        e2e.wait_for("v2 answers", lambda: any(t > deployed and text == "v2" for t, _, text in seen))
        time.sleep(0.5)
        settled = time.monotonic()
        e2e.wait_for("more traffic", lambda: sum(t > settled for t, _, _ in seen) > 20)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert failures == []
    texts = {text for _, _, text in seen}
    assert texts == {"v1", "v2"}
    assert {text for t, _, text in seen if t > settled} == {"v2"}
    # the old seed goes once its instances finished; the new one stays
    (new,) = e2e.wait_for(
        "only the v2 seed",
        lambda: (
            [s for s in e2e.seeds(d, "upd") if s["pid"] != old["pid"]] == e2e.seeds(d, "upd")
            and e2e.seeds(d, "upd")
        ),
    )
    assert new["version"] != old["version"]
    e2e.wait_for("the old seed process to exit", lambda: not e2e.alive(old["pid"]))
    for inst in e2e.instances(d, "upd"):
        if inst["state"] == "ready":
            assert inst["version"] == new["version"]
            assert e2e.ppid(inst["pid"]) == new["pid"]


def test_an_idle_seed_is_reclaimed_and_comes_back_on_demand(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory, seed_idle_timeout=1.0)
    d.deploy("idle", HELLO.format(text="zz"), {"worker": {"disposable": True}})
    (seed,) = e2e.wait_for("the seed", lambda: e2e.seeds(d, "idle"))
    assert d.request("idle").text == "zz"
    e2e.wait_for("the idle seed to be reclaimed", lambda: e2e.seeds(d, "idle") == [], timeout=10)
    e2e.wait_for("the seed process to exit", lambda: not e2e.alive(seed["pid"]))
    assert e2e.warmfork_stats(d)["seeds_reclaimed"] >= 1
    assert d.request("idle").text == "zz"
    (again,) = e2e.wait_for("a new seed", lambda: e2e.seeds(d, "idle"))
    assert again["pid"] != seed["pid"]


def test_no_orphans_after_kill_9_of_the_daemon(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    small = {"resourceLimit": {"memory": 128 << 20}}  # the scheduler's memory pool is 1 GiB
    d.deploy("kept", HELLO.format(text="k"), {**small, "worker": {"reservationCount": 2}})
    d.deploy("once", HELLO.format(text="o"), {**small, "worker": {"disposable": True}})
    d.deploy("cold", HELLO.format(text="c"), {**small, "worker": {"disableSeed": True}})
    for name, text in (("kept", "k"), ("kept", "k"), ("cold", "c"), ("once", "o")):
        assert d.request(name).text == text
    e2e.wait_for("two seeds", lambda: len(e2e.seeds(d)) == 2)
    e2e.wait_for("kept instances", lambda: len(e2e.instances(d, "kept")) >= 1)
    pids = e2e.descendants(d.pid)
    seeds = {s["pid"] for s in e2e.seeds(d)}
    workers = {i["pid"] for name in ("kept", "cold") for i in e2e.instances(d, name)}
    assert seeds | workers <= set(pids), (seeds, workers, pids)
    assert len(pids) >= 5  # launcher, two seeds, a kept instance, a cold worker
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(e2e.alive(p) for p in pids):
        time.sleep(0.05)
    assert [p for p in pids if e2e.alive(p)] == []
