"""Shared helpers for the scheduler tests: an in-test InstanceFactory (the kernel's side)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from kernel.interfaces import FunctionVersion
from kernel.profile import parse_profile
from plugins.scaler_reactive.config import ScalerConfig
from plugins.scaler_reactive.dispatch import strategies
from plugins.scaler_reactive.policies import policies
from plugins.scaler_reactive.scheduler import ReactiveScheduler

MiB = 1 << 20


class FakeInstance:
    """An instance handle whose process is imaginary; records when it was stopped."""

    def __init__(self, factory: FakeFactory, version: FunctionVersion, n: int) -> None:
        self.factory = factory
        self.id = f"{version.name}-{n}"
        self.function = version.name
        self.version = version.version
        self.pid = 10000 + n
        self.state = "ready"
        self.active = 0
        self.served = 0
        self.started_at = trio.current_time()
        self.stopped_at: float | None = None

    async def stop(self, *, drain_timeout: float) -> None:
        self.state = "stopped"
        self.stopped_at = trio.current_time()
        self.factory.stopped.append(self)


class FakeFactory:
    """Starts FakeInstances after ``delay`` seconds; ``failures`` are raised in order."""

    def __init__(self, delay: float = 0.5, failures: list[Exception | None] | None = None) -> None:
        self.delay = delay
        self.failures = list(failures or [])
        self.started: list[FakeInstance] = []
        self.stopped: list[FakeInstance] = []
        self.attempts = 0
        self.max_live = 0

    @property
    def live(self) -> list[FakeInstance]:
        return [i for i in self.started if i.stopped_at is None]

    async def start(self, version: FunctionVersion) -> FakeInstance:
        self.attempts += 1
        await trio.sleep(self.delay)
        if self.failures:
            exc = self.failures.pop(0)
            if exc is not None:
                raise exc
        inst = FakeInstance(self, version, len(self.started) + 1)
        self.started.append(inst)
        self.max_live = max(self.max_live, len(self.live))
        return inst


def make_version(
    name: str = "fn", version: str = "v1", memory: int = 64 * MiB, **extra: Any
) -> FunctionVersion:
    """A FunctionVersion; ``extra`` keys are profile fields (``worker``, ``rateLimit``)."""
    profile = parse_profile({"name": name, "resourceLimit": {"memory": memory}, **extra})
    return FunctionVersion(profile=profile, version=version, artifact=b"")


def make_scheduler(factory: FakeFactory, extra_policies: Any = (), **config: Any) -> ReactiveScheduler:
    specs = {p.name: p for p in [*policies(), *extra_policies]}
    return ReactiveScheduler(factory, {s.name: s for s in strategies()}, specs, ScalerConfig(**config))


@asynccontextmanager
async def running(scheduler: ReactiveScheduler) -> AsyncIterator[trio.Nursery]:
    """Run the scheduler's background task for the duration of the block."""
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        yield nursery
        nursery.cancel_scope.cancel()
