"""Scheduler limits fail fast and quietly (real scheduler code, trio's autojump clock).

- a function that cannot get any instance because the memory pool is full (or too
  small for one instance) gets 503 ``memory_pool_exhausted`` at once, not after
  the queue deadline;
- a function whose instances fail fatally with reservations configured backs off
  up to a minute and logs repeats sparsely instead of every few seconds.
"""

from __future__ import annotations

import pytest
import trio
from scaler.helpers import FakeFactory, MiB, make_scheduler, make_version, running

from kernel.errors import StartError
from kernel.interfaces import RejectedError
from plugins.scaler_reactive.config import default_memory_pool


async def _hold(scheduler, name: str, seconds: float) -> None:
    lease = await scheduler.acquire(name)
    await trio.sleep(seconds)
    lease.release()


async def test_instance_larger_than_pool_fails_at_once(autojump_clock):
    scheduler = make_scheduler(FakeFactory(delay=0.1), memory_pool=256 * MiB, queue_timeout=10)
    scheduler.deploy(make_version("big", memory=512 * MiB))
    async with running(scheduler):
        t0 = trio.current_time()
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("big")
        assert trio.current_time() - t0 < 0.01
    rej = info.value.rejection
    assert (rej.status, rej.reason) == (503, "memory_pool_exhausted")
    assert "512 MiB" in rej.message and "memory_pool" in rej.message
    assert scheduler.statistics()["rejections"]["memory_pool_exhausted"] == 1


async def test_pool_full_of_busy_instances_fails_fast_then_recovers(autojump_clock):
    factory = FakeFactory(delay=0.1)
    scheduler = make_scheduler(factory, memory_pool=1 << 30, queue_timeout=10, function_memory_share=1.0)
    scheduler.deploy(make_version("a", memory=512 * MiB, worker={"maxActivateRequests": 1}))
    scheduler.deploy(make_version("b", memory=512 * MiB, worker={"maxActivateRequests": 1}))
    async with running(scheduler), trio.open_nursery() as nursery:
        nursery.start_soon(_hold, scheduler, "a", 5.0)
        nursery.start_soon(_hold, scheduler, "a", 5.0)
        await trio.sleep(1.0)  # both of a's instances are busy and fill the pool
        t0 = trio.current_time()
        with pytest.raises(RejectedError) as info:
            await scheduler.acquire("b")
        assert trio.current_time() - t0 < 0.01, "must not wait for the queue deadline"
        assert info.value.rejection.reason == "memory_pool_exhausted"
        assert "exhausted" in info.value.rejection.message
        # a request to "a" still queues behind its busy instances (not a pool failure)
        waiting = trio.Event()

        async def queued_a() -> None:
            waiting.set()
            await _hold(scheduler, "a", 0.1)

        nursery.start_soon(queued_a)
        await waiting.wait()
        await trio.sleep(40)  # a's requests finish, its idle instances get reclaimed
        await _hold(scheduler, "b", 0.1)


async def test_fatal_start_error_with_reservations_backs_off_and_is_quiet(autojump_clock):
    factory = FakeFactory(delay=0.05, failures=[StartError("SyntaxError: x", fatal=True)] * 1000)
    lines: list[str] = []
    scheduler = make_scheduler(factory)
    scheduler._log = lambda fn, level, msg, inst: lines.append(msg)
    scheduler.deploy(make_version("bad", worker={"reservationCount": 2}))
    async with running(scheduler):
        await trio.sleep(600)
    failures = [m for m in lines if "failed to start" in m]
    assert factory.attempts < 30, factory.attempts  # a 4 s retry loop would make ~150
    assert len(failures) <= 8, failures
    assert "next retry in 60 s" in failures[-1]


def test_default_memory_pool_follows_memtotal(tmp_path):
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       25165824 kB\nMemFree: 1 kB\n")
    assert default_memory_pool(str(info)) == int(25165824 * 1024 * 0.75)
    info.write_text("MemTotal:       1024 kB\n")
    assert default_memory_pool(str(info)) == 1 << 30
    assert default_memory_pool(str(tmp_path / "missing")) == 1 << 30
    assert default_memory_pool() >= 1 << 30
