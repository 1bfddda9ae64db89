"""Disposable mode: a fresh instance per request, stopped only after its release."""

from __future__ import annotations

import trio

from .helpers import FakeFactory, make_scheduler, make_version, running


async def test_every_request_gets_a_fresh_instance_stopped_after_release(autojump_clock):
    factory = FakeFactory(delay=0.05)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"disposable": True, "maxActivateRequests": 10}))
    seen: list = []

    async def one(hold: float) -> None:
        lease = await scheduler.acquire("fn")
        seen.append(lease.instance)
        await trio.sleep(hold)  # the response is still streaming
        assert lease.instance.stopped_at is None
        t = trio.current_time()
        lease.release()
        await trio.sleep(0.01)
        assert lease.instance.stopped_at == t

    async with running(scheduler):
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(one, 0.2 + i * 0.1)
        for _ in range(5):
            await one(0.1)
    assert len(seen) == 10
    assert len({inst.id for inst in seen}) == 10
    assert len(factory.started) == 10 and len(factory.stopped) == 10


async def test_disposable_reservations_are_refilled(autojump_clock):
    factory = FakeFactory(delay=0.05)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"disposable": True, "reservationCount": 2}))
    async with running(scheduler):
        await trio.sleep(1)
        assert len(factory.live) == 2
        t0 = trio.current_time()
        lease = await scheduler.acquire("fn")
        assert trio.current_time() == t0 and not lease.cold  # a warm, unused instance
        await trio.sleep(1)
        assert len(factory.live) == 3  # two unused again, plus the one serving
        lease.release()
        await trio.sleep(1)
        assert len(factory.live) == 2 and len(factory.stopped) == 1


async def test_disposable_respects_replica_limit(autojump_clock):
    factory = FakeFactory(delay=0.05)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"disposable": True, "replicaCountLimit": 2}))
    ids: list = []

    async def one() -> None:
        lease = await scheduler.acquire("fn")
        ids.append(lease.instance.id)
        await trio.sleep(0.1)
        lease.release()

    async with running(scheduler), trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(one)
    assert len(set(ids)) == 8
    assert factory.max_live == 2
