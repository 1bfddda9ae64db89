"""Queueing and dispatch of the reactive scheduler, on trio's virtual clock."""

from __future__ import annotations

import pytest
import trio

from kernel.errors import StartError
from kernel.interfaces import RejectedError

from .helpers import FakeFactory, make_scheduler, make_version, running


async def _hold(scheduler, name: str, seconds: float, log: list, tag: object = None) -> None:
    lease = await scheduler.acquire(name)
    log.append((tag, lease.instance.id, trio.current_time()))
    await trio.sleep(seconds)
    lease.release()


async def test_queued_burst_on_one_instance_is_served_in_fifo_order(autojump_clock):
    factory = FakeFactory(delay=0.5)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "replicaCountLimit": 1}))
    served: list = []
    async with running(scheduler), trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(_hold, scheduler, "fn", 0.1, served, i)
            await trio.sleep(0.001)  # fixes the arrival order
    assert [tag for tag, _, _ in served] == list(range(10))
    assert {inst for _, inst, _ in served} == {"fn-1"}
    assert len(factory.started) == 1
    stats = scheduler.statistics()["functions"]["fn"]
    assert stats["queued"] == 0 and stats["inflight"] == 0 and stats["served"] == 10


async def test_queue_deadline_rejects_after_queue_timeout(autojump_clock):
    factory = FakeFactory(delay=0.0)
    scheduler = make_scheduler(factory, queue_timeout=3.0)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "replicaCountLimit": 1}))
    async with running(scheduler):
        lease = await scheduler.acquire("fn")
        t0 = trio.current_time()
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("fn")
        assert trio.current_time() - t0 == pytest.approx(3.0)
        assert info.value.rejection.status == 503
        assert info.value.rejection.reason == "queue_timeout"
        assert info.value.rejection.retry_after == 1.0
        assert scheduler.statistics()["functions"]["fn"]["queued"] == 0
        lease.release()
        # the timed-out request left no trace: the instance is free again at once
        t1 = trio.current_time()
        (await scheduler.acquire("fn")).release()
        assert trio.current_time() == t1
        assert scheduler.statistics()["functions"]["fn"]["inflight"] == 0


async def test_bounded_queue_rejects_when_full(autojump_clock):
    scheduler = make_scheduler(FakeFactory(delay=5.0), max_queue_length=3)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "replicaCountLimit": 1}))
    results: list = []

    async def one() -> None:
        try:
            (await scheduler.acquire("fn")).release()
            results.append("ok")
        except RejectedError as exc:
            results.append(exc.rejection.reason)

    async with running(scheduler), trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert sorted(results) == ["ok", "ok", "ok", "queue_full", "queue_full"]


async def test_disable_request_queue_rejects_at_once(autojump_clock):
    factory = FakeFactory(delay=1.0)
    scheduler = make_scheduler(factory)
    worker = {"maxActivateRequests": 1, "replicaCountLimit": 1, "disableRequestQueue": True}
    scheduler.deploy(make_version(worker=worker))
    async with running(scheduler):
        t0 = trio.current_time()
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("fn")
        assert trio.current_time() == t0
        assert (info.value.rejection.status, info.value.rejection.reason) == (503, "no_capacity")
        await trio.sleep(1.5)  # the rejected request kicked off a start
        lease = await scheduler.acquire("fn")
        with pytest.raises(RejectedError):
            await scheduler.acquire("fn")
        assert trio.current_time() == t0 + 1.5
        lease.release()
        (await scheduler.acquire("fn")).release()
    assert len(factory.started) == 1


@pytest.mark.parametrize(
    ("fast_fail", "error"),
    [(True, StartError("boom")), (False, StartError("syntax error", fatal=True))],
)
async def test_failed_start_fails_the_queue_at_once(autojump_clock, fast_fail, error):
    factory = FakeFactory(delay=0.5, failures=[error])
    scheduler = make_scheduler(factory)
    worker = {"maxActivateRequests": 2, "fastFailRequestsOnStarting": fast_fail}
    scheduler.deploy(make_version(worker=worker))
    reasons: list = []

    async def one() -> None:
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("fn")
        reasons.append((info.value.rejection.reason, trio.current_time()))

    async with running(scheduler), trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert [r for r, _ in reasons] == ["start_failed"] * 3
    assert all(t == pytest.approx(0.5) for _, t in reasons)  # at the failure, not the deadline


async def test_non_fatal_start_failure_retries_and_serves_the_queue(autojump_clock):
    factory = FakeFactory(delay=0.5, failures=[StartError("transient")])
    scheduler = make_scheduler(factory, start_retry_backoff=0.25)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1}))
    async with running(scheduler):
        lease = await scheduler.acquire("fn")
        assert trio.current_time() == pytest.approx(0.5 + 0.25 + 0.5)
        lease.release()
    assert factory.attempts == 2


async def test_initialization_timeout_is_a_start_failure(autojump_clock):
    factory = FakeFactory(delay=30.0)
    scheduler = make_scheduler(factory)
    worker = {"initializationTimeout": 2000, "fastFailRequestsOnStarting": True}
    scheduler.deploy(make_version(worker=worker))
    async with running(scheduler):
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("fn")
        assert info.value.rejection.reason == "start_failed"
        assert "2 s" in info.value.rejection.message
        assert trio.current_time() == pytest.approx(2.0)


async def test_least_request_count_spreads_load(autojump_clock):
    scheduler = make_scheduler(FakeFactory(delay=0.1))
    scheduler.deploy(make_version(worker={"reservationCount": 3, "maxActivateRequests": 10}))
    async with running(scheduler):
        await trio.sleep(1)
        leases = [await scheduler.acquire("fn") for _ in range(7)]
        counts: dict[str, int] = {}
        for lease in leases:
            counts[lease.instance.id] = counts.get(lease.instance.id, 0) + 1
        assert sorted(counts.values()) == [2, 2, 3]
        oldest = scheduler.instances()[0].id
        assert leases[0].instance.id == oldest  # ties go to the oldest
        for lease in leases[:3]:
            lease.release()
        # the three released came from three different instances; the next two go there
        nxt = [await scheduler.acquire("fn") for _ in range(3)]
        assert len({lease.instance.id for lease in nxt}) == 3


async def test_round_robin_cycles(autojump_clock):
    scheduler = make_scheduler(FakeFactory(delay=0.1))
    worker = {"reservationCount": 3, "dispatchMode": "round-robin"}
    scheduler.deploy(make_version(worker=worker))
    async with running(scheduler):
        await trio.sleep(1)
        ids = [slot.id for slot in scheduler.instances()]
        order = []
        for _ in range(6):
            lease = await scheduler.acquire("fn")
            order.append(lease.instance.id)
            lease.release()
    assert order == ids * 2


async def test_cancelled_queued_request_is_removed(autojump_clock):
    factory = FakeFactory(delay=0.0)
    scheduler = make_scheduler(factory)
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "replicaCountLimit": 1}))
    async with running(scheduler):
        lease = await scheduler.acquire("fn")
        with trio.move_on_after(2):
            await scheduler.acquire("fn")
        assert scheduler.statistics()["functions"]["fn"]["queued"] == 0
        lease.release()
        assert scheduler.statistics()["functions"]["fn"]["inflight"] == 0
        t0 = trio.current_time()
        (await scheduler.acquire("fn")).release()
        assert trio.current_time() == t0


async def test_cancel_after_grant_releases_the_lease(autojump_clock):
    scheduler = make_scheduler(FakeFactory(delay=0.0))
    scheduler.deploy(make_version(worker={"maxActivateRequests": 1, "replicaCountLimit": 1}))
    async with running(scheduler):
        first = await scheduler.acquire("fn")
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(scheduler.acquire, "fn")
                await trio.sleep(1)
                scope.cancel()  # the waiter is woken with Cancelled ...
                first.release()  # ... and granted before it gets to run
        stats = scheduler.statistics()["functions"]["fn"]
        assert stats["inflight"] == 0 and stats["queued"] == 0
        (await scheduler.acquire("fn")).release()


async def test_release_twice_counts_once(autojump_clock):
    scheduler = make_scheduler(FakeFactory(delay=0.0))
    scheduler.deploy(make_version())
    async with running(scheduler):
        a = await scheduler.acquire("fn")
        b = await scheduler.acquire("fn")
        a.release()
        a.release()
        assert scheduler.statistics()["functions"]["fn"]["inflight"] == 1
        b.release()


async def test_unknown_function_is_404(autojump_clock):
    scheduler = make_scheduler(FakeFactory())
    async with running(scheduler):
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("nope")
    assert info.value.rejection.status == 404
