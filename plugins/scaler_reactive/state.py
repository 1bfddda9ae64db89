"""The scheduler's bookkeeping: instance slots, leases, queued waiters, per function."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from kernel.interfaces import FunctionVersion, InstanceHandle, Rejection

if TYPE_CHECKING:
    from plugins.scaler_reactive.policies import ScalingPolicy
    from plugins.scaler_reactive.scheduler import ReactiveScheduler


class Slot:
    """One instance as the scheduler tracks it; satisfies the InstanceHandle protocol.

    ``active`` counts leases not yet released (so a streaming response counts until
    the kernel has sent its last byte); ``handle`` is the kernel's object once started.
    """

    def __init__(self, version: FunctionVersion, seq: int, now: float) -> None:
        self.version_info = version
        self.function = version.name
        self.version = version.version
        self.seq = seq
        self.handle: InstanceHandle | None = None
        self.state = "starting"
        self.active = 0
        self.served = 0
        self.used = False
        self.created_at = now
        self.last_used = now
        self.ready_at = now
        self.memory = version.profile.resource_limit.memory
        self.idle = trio.Event()

    @property
    def id(self) -> str:
        return self.handle.id if self.handle else f"{self.function}-starting-{self.seq}"

    @property
    def pid(self) -> int:
        return self.handle.pid if self.handle else 0

    @property
    def started_at(self) -> float:
        return self.handle.started_at if self.handle else self.created_at

    def sync_active(self) -> None:
        """The scheduler owns ``active``; mirror it on the kernel's handle."""
        if self.handle is not None:
            self.handle.active = self.active

    async def stop(self, *, drain_timeout: float) -> None:
        if self.handle is not None:
            await self.handle.stop(drain_timeout=drain_timeout)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "function": self.function,
            "version": self.version,
            "pid": self.pid,
            "state": self.state,
            "active": self.active,
            "served": self.served,
            "started_at": self.started_at,
        }


class Lease:
    """The right to send one request to ``instance``; :meth:`release` exactly once.

    ``waited`` is the time spent queued, ``cold`` whether the instance was started
    after the request arrived (a cold start the client waited for).
    """

    __slots__ = ("_released", "_scheduler", "cold", "instance", "slot", "waited")

    def __init__(self, scheduler: ReactiveScheduler, slot: Slot, waited: float, cold: bool) -> None:
        assert slot.handle is not None
        self.instance: InstanceHandle = slot.handle
        self.slot = slot
        self.waited = waited
        self.cold = cold
        self._scheduler = scheduler
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self, *, failed: bool = False) -> None:
        """The response was fully sent (or failed): free the instance's capacity."""
        if self._released:
            return
        self._released = True
        self._scheduler._release(self, failed)


class Waiter:
    """A queued request."""

    __slots__ = ("enqueued_at", "error", "event", "lease")

    def __init__(self, now: float) -> None:
        self.enqueued_at = now
        self.event = trio.Event()
        self.lease: Lease | None = None
        self.error: Rejection | None = None


class FunctionState:
    """Everything the scheduler knows about one function."""

    def __init__(self, version: FunctionVersion, policy: ScalingPolicy, choose: Any) -> None:
        self.current = version
        self.policy = policy
        self.choose = choose
        self.slots: list[Slot] = []
        """Starting and accepting instances, oldest first (draining ones leave)."""
        self.waiters: deque[Waiter] = deque()
        self.inflight = 0
        self.failures = 0
        self.retry_at = float("-inf")
        self.fatal: str | None = None
        self.removed = False
        self.counters = {"served": 0, "cold": 0, "queued_total": 0, "failed": 0, "started": 0}

    @property
    def name(self) -> str:
        return self.current.name

    @property
    def worker(self) -> Any:
        return self.current.profile.worker

    @property
    def mar(self) -> int:
        return self.worker.effective_max_activate_requests

    def current_slots(self, state: str) -> list[Slot]:
        return [s for s in self.slots if s.state == state and s.version == self.current.version]

    def live(self) -> int:
        """Starting or accepting instances of the current version."""
        return sum(1 for s in self.slots if s.version == self.current.version)
