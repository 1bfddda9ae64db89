"""Scaling policies, reservations, limits, memory pool, shrink strategies, deploys."""

from __future__ import annotations

import math

import pytest
import trio

from kernel.interfaces import ScalingPolicySpec
from plugins.scaler_reactive.policies import EMA, KeepAlive, Sample, WaterLevel

from .helpers import FakeFactory, MiB, make_scheduler, make_version, running


def sample(active: int, instances: int, mar: int = 10, now: float = 0.0, **kw) -> Sample:
    return Sample(
        now=now,
        active=active,
        queued=0,
        instances=instances,
        starting=0,
        max_activate_requests=mar,
        reservation_count=kw.pop("reservation_count", 0),
        replica_count_limit=10,
        **kw,
    )


@pytest.mark.parametrize(("active", "instances"), [(8, 1), (9, 1), (18, 2), (30, 3), (77, 8)])
def test_water_level_expand_matches_noslate_formula(active, instances):
    policy = WaterLevel()
    cap = instances * 10
    assert active / cap >= 0.8
    assert policy.evaluate(sample(active, instances)) == math.ceil((active / 0.7 - cap) / 10)


def test_water_level_expand_numbers():
    assert WaterLevel().evaluate(sample(9, 1)) == 1  # ceil((12.86 - 10) / 10)
    assert WaterLevel().evaluate(sample(30, 3)) == 2  # ceil((42.86 - 30) / 10)
    assert WaterLevel().evaluate(sample(7, 1)) == 0  # W = 0.7: between thresholds


def test_water_level_shrinks_after_six_low_checks():
    policy = WaterLevel()
    results = [policy.evaluate(sample(2, 5)) for _ in range(6)]
    assert results == [0, 0, 0, 0, 0, -math.floor((50 - 2 / 0.7) / 10)]
    assert results[-1] == -4
    # a busy check in between resets the count
    policy = WaterLevel()
    for _ in range(5):
        policy.evaluate(sample(2, 5))
    policy.evaluate(sample(35, 5))  # W = 0.7
    assert [policy.evaluate(sample(2, 5)) for _ in range(6)][-1] == -4
    assert policy.low_checks == 0


def test_ema_expands_to_target_and_shrinks_after_cooldown():
    policy = EMA()
    for t in range(60):
        policy.observe(float(t), 10)
    # ema of six buckets of peak 10 is 10; capacity 10 -> level 1.0 > 0.7
    assert policy.evaluate(sample(10, 1, now=60.0)) == math.ceil(10 / 0.5 / 10) - 1
    assert policy.ema == pytest.approx(10)
    assert policy.evaluate(sample(10, 1, now=60.5)) == 0  # 1 s expand cooldown
    # traffic stops at 61 s: bucket 6 still peaked at 10, bucket 7 is 0
    policy.observe(61.0, 0)
    assert policy.evaluate(sample(0, 2, now=75.0)) == -1  # ema 5, level 0.25: to ceil(5/0.5/10)
    assert policy.ema == pytest.approx(0.5 * 0 + 0.5 * 10)
    assert policy.evaluate(sample(0, 1, now=130.0)) == 0  # ema 0, but 60 s shrink cooldown
    assert policy.ema == 0
    assert policy.evaluate(sample(0, 1, now=136.0)) == -1  # ema 0 -> needed 0


def test_keepalive_keeps_instance_for_observed_gaps_and_sheds_burst_capacity():
    policy = KeepAlive(min_keepalive=30, max_keepalive=600)
    t = 0.0
    for _ in range(5):  # a request every 200 s, lasting 1 s
        policy.observe(t, 1)
        policy.observe(t + 1, 0)
        t += 200
    assert policy.keepalive == pytest.approx(199 * 1.1)
    assert policy.evaluate(sample(0, 1, now=t - 50)) == 0  # idle 149 s: kept
    assert policy.evaluate(sample(0, 1, now=t + 30)) == -1  # idle 229 s: gone
    policy.observe(t + 40, 25)  # a burst scales out at once: ceil(25 / 7)
    assert policy.evaluate(sample(10, 1, now=t + 40)) == 3
    policy.observe(t + 41, 0)
    assert policy.evaluate(sample(0, 4, now=t + 90)) == 0  # within the stable window
    assert policy.evaluate(sample(0, 4, now=t + 110)) == -3  # one kept for the keep-alive
    # gaps longer than max_keepalive are not worth covering
    hourly = KeepAlive(min_keepalive=30, max_keepalive=600)
    for k in range(4):
        hourly.observe(k * 3600.0, 1)
        hourly.observe(k * 3600.0 + 1, 0)
    assert hourly.keepalive == 30


class Fixed:
    """A test policy whose answer the test sets."""

    interval = 1.0

    def __init__(self) -> None:
        self.delta = 0

    def observe(self, now, concurrency):
        pass

    def evaluate(self, s):
        delta, self.delta = self.delta, 0
        return delta

    def state(self):
        return {}


def fixed_scheduler(factory):
    spec = ScalingPolicySpec("fixed", Fixed)
    return make_scheduler(factory, extra_policies=[spec], policy="fixed")


async def test_reservations_started_at_deploy_and_replaced_after_exit(autojump_clock):
    factory = FakeFactory(delay=0.2)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"reservationCount": 2}))  # before run: start-up
    async with running(scheduler):
        await trio.sleep(1)
        assert len(factory.live) == 2
        dead = factory.live[0]
        dead.stopped_at = trio.current_time()  # the process died on its own
        scheduler.instance_exited(dead, "crash")
        await trio.sleep(1)
        assert len(factory.live) == 2 and len(factory.started) == 3
        await trio.sleep(600)  # idle for ten minutes: never below the reservation
        assert len(factory.live) == 2
        assert [s.state for s in scheduler.instances()] == ["ready", "ready"]


async def test_water_level_scales_in_to_zero_after_idle(autojump_clock):
    factory = FakeFactory(delay=0.2)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1}))
    async with running(scheduler), trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(lambda: _use(scheduler, 0.5))
        await trio.sleep(5)
        assert len(factory.live) == 4
        await trio.sleep(70)  # 6 low checks at 10 s
        assert factory.live == []


async def _use(scheduler, seconds: float, name: str = "fn") -> str:
    lease = await scheduler.acquire(name)
    await trio.sleep(seconds)
    lease.release()
    return lease.instance.id


async def test_replica_count_limit_caps_instances(autojump_clock):
    factory = FakeFactory(delay=0.3)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "replicaCountLimit": 3}))
    done: list = []

    async def one():
        done.append(await _use(scheduler, 0.5))

    async with running(scheduler), trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    assert len(done) == 20
    assert factory.max_live == 3 and len(factory.started) == 3


async def test_memory_pool_caps_instances_and_reclaims_idle_ones(autojump_clock):
    factory = FakeFactory(delay=0.1)
    scheduler = make_scheduler(factory, memory_pool=1 << 30, function_memory_share=1.0)
    scheduler.deploy(make_version("a", memory=512 * MiB, worker={"maxActivateRequests": 1}))
    scheduler.deploy(make_version("b", memory=512 * MiB, worker={"maxActivateRequests": 1}))
    async with running(scheduler):
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(_use, scheduler, 1.0, "a")
        assert factory.max_live == 2  # 2 x 512 MiB fill the 1 GiB pool
        assert len([i for i in factory.live if i.function == "a"]) == 2
        # "a" is idle now; a request to "b" makes the pool stop one of a's instances
        t0 = trio.current_time()
        await _use(scheduler, 0.1, "b")
        assert trio.current_time() - t0 < 1.0
        assert scheduler.statistics()["memory_pool"]["used"] <= 1 << 30
        assert [i.function for i in factory.stopped] == ["a"]


@pytest.mark.parametrize(("strategy", "victim"), [("LCC", 1), ("FIFO", 0), ("FILO", 2)])
async def test_shrink_strategies_pick_their_victim(autojump_clock, strategy, victim):
    factory = FakeFactory(delay=0.1)
    scheduler = fixed_scheduler(factory)
    worker = {"reservationCount": 3, "shrinkStrategy": strategy}
    scheduler.deploy(make_version(worker=worker))
    async with running(scheduler):
        await trio.sleep(1)
        slots = list(scheduler.instances())
        # give slot 0 two requests, slot 2 one, slot 1 none
        leases = []
        for index in (0, 0, 2):
            leases.append(scheduler._grant(scheduler.functions["fn"], slots[index], trio.current_time()))
        scheduler.deploy(make_version(worker={**worker, "reservationCount": 0}))  # same version
        scheduler.functions["fn"].policy.delta = -1
        await trio.sleep(1.5)
        assert [s.state for s in slots].count("draining") + [s.state for s in slots].count("stopped") == 1
        assert slots[victim].state in ("draining", "stopped")
        for lease in leases:
            lease.release()
        await trio.sleep(1)
        assert slots[victim].handle.stopped_at is not None


async def test_shrink_drains_in_flight_requests_before_stopping(autojump_clock):
    factory = FakeFactory(delay=0.1)
    scheduler = fixed_scheduler(factory)
    scheduler.deploy(make_version())
    async with running(scheduler):
        lease = await scheduler.acquire("fn")
        scheduler.functions["fn"].policy.delta = -1
        await trio.sleep(2)
        assert lease.slot.state == "draining"
        assert lease.instance.stopped_at is None
        t_release = trio.current_time()
        lease.release()
        await trio.sleep(0.1)
        assert lease.instance.stopped_at == t_release


async def test_drain_timeout_stops_a_stuck_instance(autojump_clock):
    factory = FakeFactory(delay=0.1)
    scheduler = make_scheduler(
        factory, extra_policies=[ScalingPolicySpec("fixed", Fixed)], policy="fixed", drain_timeout=5.0
    )
    scheduler.deploy(make_version())
    async with running(scheduler):
        lease = await scheduler.acquire("fn")
        scheduler.functions["fn"].policy.delta = -1
        await trio.sleep(10)
        assert lease.instance.stopped_at == pytest.approx(1.0 + 5.0)
        lease.release()  # late release of a stopped instance is harmless
        assert scheduler.statistics()["functions"]["fn"]["inflight"] == 0


async def test_deploy_moves_new_requests_and_drains_old_instances(autojump_clock):
    factory = FakeFactory(delay=0.5)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(version="v1"))
    async with running(scheduler):
        old = await scheduler.acquire("fn")
        scheduler.deploy(make_version(version="v2"))
        new = await scheduler.acquire("fn")
        assert (old.instance.version, new.instance.version) == ("v1", "v2")
        assert old.instance.stopped_at is None  # still finishing its request
        await trio.sleep(3)
        assert old.instance.stopped_at is None
        old.release()
        await trio.sleep(0.1)
        assert old.instance.stopped_at is not None
        new.release()
        assert {s.version for s in scheduler.instances()} == {"v2"}


async def test_instance_exit_fails_nothing_else(autojump_clock):
    factory = FakeFactory(delay=0.1)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "reservationCount": 2}))
    async with running(scheduler):
        await trio.sleep(1)
        a = await scheduler.acquire("fn")
        b = await scheduler.acquire("fn")
        a.instance.stopped_at = trio.current_time()
        scheduler.instance_exited(a.instance, "oom")
        a.release(failed=True)
        b.release()
        stats = scheduler.statistics()["functions"]["fn"]
        assert stats["inflight"] == 0 and stats["failed"] == 1
        await trio.sleep(1)
        assert len(factory.live) == 2 and len(factory.started) == 3  # replaced
        assert factory.stopped == []  # the dead one is forgotten, not stopped
        ids = {s.id for s in scheduler.instances()}
        assert a.instance.id not in ids and len(ids) == 2


async def test_drain_stops_everything(autojump_clock):
    factory = FakeFactory(delay=0.1)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"reservationCount": 3}))
    async with running(scheduler):
        await trio.sleep(1)
        lease = await scheduler.acquire("fn")

        async def finish():
            await trio.sleep(2)
            lease.release()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(finish)
            await scheduler.drain(timeout=10)
        assert trio.current_time() == pytest.approx(3.0)
        assert len(factory.stopped) == 3 and scheduler.instances() == []
        with pytest.raises(Exception, match="shutting down"):
            await scheduler.acquire("fn")
