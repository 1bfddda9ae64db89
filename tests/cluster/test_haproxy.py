"""Three daemons on loopback behind a real haproxy with the example config.

Host hashing starts one set of instances per function (round-robin starts them on
every daemon); a hot function spills to a second daemon (bounded load); kill -9 of a
daemon and SIGTERM of a daemon under load lose no GET; a draining daemon exits within
a second of its last request, every time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from cluster.support import HELLO, cluster, haproxy, haproxy_available, instances_by_function, start_daemon

pytestmark = pytest.mark.skipif(not haproxy_available(), reason="haproxy is not installed (Debian: haproxy)")
FUNCTIONS = [f"fn{i}" for i in range(10)]


def test_host_hashing_starts_one_instance_per_function(tmp_path: Path) -> None:
    with cluster(tmp_path, FUNCTIONS) as (daemons, lb):
        for _ in range(3):
            for name in FUNCTIONS:
                r = lb.get(name)
                assert r.status_code == 200 and r.text == "hello", r.text
        placed = instances_by_function(daemons)
        assert {name: len(placed.get(name, [])) for name in FUNCTIONS} == dict.fromkeys(FUNCTIONS, 1), placed
        assert len({placed[name][0] for name in FUNCTIONS}) >= 2, "every function hashed to one daemon"


def test_a_hot_function_spills_to_a_second_daemon(tmp_path: Path) -> None:
    with cluster(tmp_path, ["hot"]) as (daemons, lb):
        assert lb.get("hot").status_code == 200
        errors: list[object] = []

        def slow() -> None:
            with httpx.Client() as client:
                for _ in range(5):
                    r = lb.get("hot", "/?sleep=300", client=client)
                    if r.status_code != 200:
                        errors.append(r.status_code)

        threads = [threading.Thread(target=slow) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        placed = instances_by_function(daemons)
        assert len(set(placed["hot"])) >= 2, placed


class Load(haproxy.LoadThreads):
    """Threads sending GETs through the balancer, counting every outcome."""

    def __init__(self, lb, threads: int = 6) -> None:
        super().__init__(threads)
        self.lb, self.ok, self.bad = lb, 0, []

    def run(self, index: int) -> None:
        with httpx.Client() as client:
            i = 0
            while not self.stop.is_set():
                name = FUNCTIONS[i % len(FUNCTIONS)]
                i += 1
                try:
                    r = self.lb.get(name, client=client, timeout=10)
                except httpx.HTTPError as exc:
                    self.bad.append(repr(exc))
                    continue
                if r.status_code == 200:
                    self.ok += 1
                else:
                    self.bad.append((r.status_code, r.text[:200]))


def test_kill_9_of_a_daemon_under_load_loses_no_get(tmp_path: Path) -> None:
    with cluster(tmp_path, FUNCTIONS) as (daemons, lb):
        with Load(lb) as load:
            time.sleep(1.0)
            os.kill(daemons[1].pid, signal.SIGKILL)
            time.sleep(2.0)
        assert load.ok > 100 and load.bad == [], (load.ok, load.bad[:5])


def test_sigterm_under_load_loses_nothing_and_exits_within_a_second(tmp_path: Path) -> None:
    with cluster(tmp_path, FUNCTIONS) as (daemons, lb):
        victim = daemons[2]
        exits = []
        for _trial in range(20):
            with Load(lb, threads=4) as load:
                time.sleep(0.3)
                served = victim.control("GET", "/v1/instances").json()["instances"]
                assert served, "the balancer sends the victim nothing: the trial would prove nothing"
                t0 = time.monotonic()
                victim.proc.send_signal(signal.SIGTERM)
                victim.proc.wait(30)
                exits.append(time.monotonic() - t0)
                time.sleep(0.2)
            assert load.bad == [], (load.ok, load.bad[:5])
            victim.start()  # the same state directory: every function comes back
            time.sleep(1.2)  # until haproxy sees it up again
        assert max(exits) < 1.0, exits  # the last request ends after the signal: within 1 s of it


def test_readiness_flips_under_saturation_and_back(tmp_path: Path) -> None:
    mib = 1 << 20
    d = start_daemon(
        tmp_path / "sat",
        {"plugins": {"scaler_reactive": {"breaker": {"enabled": False}, "memory_pool": 1024 * mib}}},
    )
    try:
        from cluster.support import metrics_url

        ready = metrics_url(d) + "/readyz"
        assert httpx.get(ready).status_code == 200
        for i in range(4):  # each holds a reserved 240 MiB instance: 94% of the pool
            d.deploy(
                f"big{i}",
                HELLO,
                {"resourceLimit": {"memory": 240 * mib}, "worker": {"reservationCount": 1}},
                filename="w.mjs",
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and httpx.get(ready).status_code == 200:
            time.sleep(0.1)
        r = httpx.get(ready)
        assert r.status_code == 503 and "saturated" in r.text, r.text
        metrics = httpx.get(metrics_url(d) + "/metrics").text
        assert "noslate_saturation 0.9" in metrics and "noslate_ready 0.0" in metrics
        for i in range(2):
            assert d.control("DELETE", f"/v1/functions/big{i}").status_code in (200, 204)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and httpx.get(ready).status_code != 200:
            time.sleep(0.1)
        assert httpx.get(ready).status_code == 200
        assert "noslate_ready 1.0" in httpx.get(metrics_url(d) + "/metrics").text
        assert httpx.get(metrics_url(d) + "/v1/functions").status_code == 404  # scrape routes only
    finally:
        d.stop()
