"""The ``reactive`` scheduler: FIFO queues, dispatch, reactive scaling, disposable mode."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import trio

from kernel.errors import ConfigError, StartError
from kernel.interfaces import (
    DispatchStrategy,
    FunctionVersion,
    InstanceFactory,
    InstanceHandle,
    RejectedError,
    Rejection,
    ScalingPolicySpec,
)
from plugins.scaler_reactive.config import ScalerConfig, default_memory_pool
from plugins.scaler_reactive.policies import Sample
from plugins.scaler_reactive.state import FunctionState, Lease, Slot, Waiter

FATAL_BACKOFF_DOUBLINGS = 7
FATAL_BACKOFF_MAX = 60.0
"""Seconds: the longest wait between retries of a function whose instances cannot start."""

SHRINK_ORDER: dict[str, Callable[[Slot], Any]] = {
    "LCC": lambda s: (s.active, s.last_used, s.seq),
    "FIFO": lambda s: s.seq,
    "FILO": lambda s: -s.seq,
}


class ReactiveScheduler:
    """Queues, dispatches and scales every function of a daemon (see docs/scaling.md)."""

    def __init__(
        self,
        factory: InstanceFactory,
        dispatch_strategies: dict[str, DispatchStrategy],
        scaling_policies: dict[str, ScalingPolicySpec],
        config: ScalerConfig | None = None,
        log: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        self.config = config or ScalerConfig()
        self.factory = factory
        self.strategies = dispatch_strategies
        if self.config.policy not in scaling_policies:
            raise ConfigError(
                [
                    f"scaling policy {self.config.policy!r} is not registered; choose one of: "
                    + ", ".join(sorted(scaling_policies))
                    + " @ $.plugins.scaler_reactive.policy"
                ]
            )
        self.policy_spec = scaling_policies[self.config.policy]
        try:
            self.interval = float(self.policy_spec.factory(**self.config.policy_options).interval)
        except TypeError as exc:
            raise ConfigError([f"{exc} @ $.plugins.scaler_reactive.policy_options"]) from exc
        self._log = log
        self.pool_limit = self.config.memory_pool or default_memory_pool()
        """Bytes of instance memory limits allowed in total (``memory_pool``; 0 = auto)."""
        self.functions: dict[str, FunctionState] = {}
        self.draining: set[Slot] = set()
        self.rejections: dict[str, int] = {}
        self.closing = False
        self._nursery: trio.Nursery | None = None
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0
        self._stopped = trio.Event()

    # ---- public API (kernel.interfaces.Scheduler) ---------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start queued work, then evaluate the scaling policy every interval."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for fn, args in self._pending:
                nursery.start_soon(fn, *args)
            self._pending.clear()
            task_status.started()
            try:
                while True:
                    await trio.sleep(self.interval)
                    for fs in list(self.functions.values()):
                        self._evaluate(fs)
            finally:
                self._nursery = None

    def deploy(self, version: FunctionVersion) -> None:
        """Make ``version`` current: new requests go to it, older instances drain."""
        fs = self.functions.get(version.name)
        if fs is None:
            fs = FunctionState(version, self._new_policy(), self._strategy(version))
            self.functions[version.name] = fs
        elif fs.current.version == version.version:
            fs.current = version
            fs.choose = self._strategy(version)
        else:
            fs.current = version
            fs.choose = self._strategy(version)
            fs.fatal, fs.failures, fs.retry_at = None, 0, -math.inf
            for slot in list(fs.slots):
                if slot.state == "ready":
                    self._drain(fs, slot)
            self.log(version.name, "info", f"version {version.version} is current; old instances drain")
        self._after_change(fs)

    def remove(self, function: str) -> None:
        """Forget ``function``: fail its queue, drain and stop its instances."""
        fs = self.functions.pop(function, None)
        if fs is None:
            return
        fs.removed = True
        self._fail_queue(fs, Rejection(404, "function_removed", f"function {function!r} was removed"))
        for slot in list(fs.slots):
            if slot.state == "ready":
                self._drain(fs, slot)

    async def acquire(self, function: str) -> Lease:
        """A lease on an instance of ``function``'s current version, queueing if needed."""
        if self.closing:
            raise self._rejected(503, "shutting_down", "the daemon is shutting down")
        fs = self.functions.get(function)
        if fs is None:
            raise self._rejected(404, "no_such_function", f"function {function!r} is not deployed", None)
        now = trio.current_time()
        if not fs.waiters:
            slot = self._choose(fs)
            if slot is not None:
                return self._grant(fs, slot, now)
        if fs.worker.disable_request_queue:
            if fs.live() == 0:
                self._start_instances(fs, 1)
            raise self._rejected(
                503, "no_capacity", f"no free instance of {function!r} and its request queue is disabled"
            )
        if fs.fatal is not None and now < fs.retry_at:
            raise self._rejected(503, "start_failed", f"instances of {function!r} fail to start: {fs.fatal}")
        if len(fs.waiters) >= self.config.max_queue_length:
            raise self._rejected(
                503, "queue_full", f"{len(fs.waiters)} requests already queued for {function!r}"
            )
        waiter = Waiter(now)
        fs.waiters.append(waiter)
        fs.counters["queued_total"] += 1
        self._observe(fs)
        self._pump(fs)
        exhausted = self._pool_exhausted(fs)
        if exhausted is not None:
            self._forget_waiter(fs, waiter)
            raise self._rejected(503, "memory_pool_exhausted", exhausted)
        returned = False
        try:
            with trio.move_on_after(self.config.queue_timeout):
                await waiter.event.wait()
            if waiter.lease is not None:
                returned = True
                return waiter.lease
            if waiter.error is not None:
                raise self._rejected(
                    waiter.error.status, waiter.error.reason, waiter.error.message, waiter.error.retry_after
                )
            raise self._rejected(
                503,
                "queue_timeout",
                f"deadline exceeded: no instance of {function!r} was free within "
                f"{self.config.queue_timeout:g} s (queue_timeout)",
            )
        finally:
            if not returned:
                self._forget_waiter(fs, waiter)

    def instance_exited(self, instance: InstanceHandle, reason: str) -> None:
        """An instance died: forget it, fail nothing else, replace it if needed."""
        for fs in self.functions.values():
            for slot in fs.slots:
                if slot.handle is not None and slot.handle.id == instance.id:
                    fs.slots.remove(slot)
                    self._stopped_slot(slot)
                    self.log(fs.name, "warn", f"instance exited ({reason})", slot.id)
                    self._after_change(fs)
                    return
        for slot in list(self.draining):
            if slot.handle is not None and slot.handle.id == instance.id:
                self.draining.discard(slot)
                self._stopped_slot(slot)
                self._after_stop()
                return

    def retire(self, instance: InstanceHandle, reason: str) -> bool:
        """Send ``instance`` no more requests; stop it once its in-flight ones end (a
        request timed out on it: it may be stuck). A new instance replaces it as needed."""
        for fs in self.functions.values():
            for slot in fs.slots:
                if slot.handle is not None and slot.handle.id == instance.id:
                    self.log(fs.name, "warning", f"instance retired ({reason})", slot.id)
                    self._drain(fs, slot)
                    self._after_change(fs)
                    return True
        return False

    def instances(self) -> Sequence[Slot]:
        out = [s for fs in self.functions.values() for s in fs.slots]
        return out + sorted(self.draining, key=lambda s: s.seq)

    def load(self) -> tuple[int, int]:
        """(requests in flight, requests queued) over every function, for the breaker."""
        fns = self.functions.values()
        return sum(fs.inflight for fs in fns), sum(len(fs.waiters) for fs in fns)

    def statistics(self) -> dict[str, Any]:
        functions = {}
        for name, fs in self.functions.items():
            functions[name] = {
                "version": fs.current.version,
                "queued": len(fs.waiters),
                "inflight": fs.inflight,
                "starting": len(fs.current_slots("starting")),
                "ready": len(fs.current_slots("ready")),
                "old": sum(1 for s in fs.slots if s.version != fs.current.version),
                "policy": fs.policy.state(),
                **fs.counters,
            }
        active, queued = self.load()
        return {
            "policy": self.policy_spec.name,
            "active": active,
            "queued": queued,
            "draining": len(self.draining),
            "memory_pool": {"used": self._pool_used(), "limit": self.pool_limit},
            "rejections": dict(self.rejections),
            "functions": functions,
        }

    def saturation(self) -> float:
        """How full this daemon is, 0..1: the largest of the memory pool's use, the
        requests in flight and queued against the breaker's ``max_active_pending``, and
        the queued ones against ``max_pending`` (the breaker opens at 1)."""
        active, queued = self.load()
        breaker = self.config.breaker
        parts = (
            self._pool_used() / self.pool_limit if self.pool_limit else 0.0,
            (active + queued) / breaker.max_active_pending,
            queued / breaker.max_pending,
        )
        return min(1.0, max(parts))

    async def drain(self, *, timeout: float) -> None:
        """Refuse new requests, fail the queues, let in-flight requests finish, stop all."""
        self.closing = True
        with trio.move_on_after(timeout + 1):
            async with trio.open_nursery() as nursery:
                for fs in list(self.functions.values()):
                    self._fail_queue(
                        fs,
                        Rejection(
                            503, "shutting_down", "the daemon is shutting down", self.config.retry_after
                        ),
                    )
                    for slot in list(fs.slots):
                        if slot.state == "ready":
                            fs.slots.remove(slot)
                            slot.state = "draining"
                            self.draining.add(slot)
                            nursery.start_soon(self._stop_slot, fs, slot, timeout)
                while self.draining or any(fs.slots for fs in self.functions.values()):
                    await self._stopped.wait()

    # ---- dispatch --------------------------------------------------------------------

    def _choose(self, fs: FunctionState) -> Slot | None:
        mar, disposable = fs.mar, fs.worker.disposable
        candidates = [
            s
            for s in fs.slots
            if s.state == "ready"
            and s.version == fs.current.version
            and s.active < mar
            and not (disposable and s.used)
        ]
        if not candidates:
            return None
        return fs.choose(candidates)

    def _grant(self, fs: FunctionState, slot: Slot, enqueued_at: float) -> Lease:
        now = trio.current_time()
        slot.active += 1
        slot.sync_active()
        slot.used = True
        slot.last_used = now
        fs.inflight += 1
        cold = slot.ready_at > enqueued_at
        if cold:
            fs.counters["cold"] += 1
        self._observe(fs)
        if fs.worker.disposable and fs.worker.reservation_count:
            self._ensure_reservations(fs)  # keep unused instances warm
        return Lease(self, slot, now - enqueued_at, cold)

    def _release(self, lease: Lease, failed: bool) -> None:
        slot = lease.slot
        now = trio.current_time()
        slot.active -= 1
        slot.sync_active()
        slot.served += 1
        slot.last_used = now
        fs = self.functions.get(slot.function)
        owner = fs is not None and (slot in fs.slots or slot in self.draining)
        if fs is not None:
            fs.inflight -= 1
            fs.counters["served"] += 1
            if failed:
                fs.counters["failed"] += 1
        if slot.state == "draining" and slot.active == 0:
            slot.idle.set()
        if fs is None:
            return
        if owner and fs.worker.disposable and slot.state == "ready":
            self._drain(fs, slot)
        self._observe(fs)
        self._pump(fs)

    def _pump(self, fs: FunctionState) -> None:
        """Hand free capacity to queued requests in order, then start what is missing."""
        while fs.waiters:
            slot = self._choose(fs)
            if slot is None:
                break
            waiter = fs.waiters.popleft()
            waiter.lease = self._grant(fs, slot, waiter.enqueued_at)
            waiter.event.set()
        # Noslate's rule: start another instance only while the queue outgrows the
        # capacity already starting (always one per request in disposable mode).
        starting = len(fs.current_slots("starting"))
        missing = math.ceil(len(fs.waiters) / fs.mar) - starting
        if missing > 0:
            self._start_instances(fs, missing)

    def _forget_waiter(self, fs: FunctionState, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            fs.waiters.remove(waiter)
        if waiter.lease is not None:  # granted, but the caller is gone (cancelled)
            waiter.lease.release(failed=True)
        self._observe(fs)

    def _fail_queue(self, fs: FunctionState, rejection: Rejection) -> None:
        while fs.waiters:
            waiter = fs.waiters.popleft()
            waiter.error = rejection
            waiter.event.set()

    def _observe(self, fs: FunctionState) -> None:
        fs.policy.observe(trio.current_time(), fs.inflight + len(fs.waiters))

    def _rejected(
        self, status: int, reason: str, message: str, retry_after: float | None = -1.0
    ) -> Exception:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        if retry_after == -1.0:
            retry_after = self.config.retry_after
        return RejectedError(Rejection(status, reason, message, retry_after))

    # ---- scaling ---------------------------------------------------------------------

    def _evaluate(self, fs: FunctionState) -> None:
        if fs.worker.disposable:
            self._ensure_reservations(fs)
            return
        now = trio.current_time()
        ready = fs.current_slots("ready")
        sample = Sample(
            now=now,
            active=sum(s.active for s in ready),
            queued=len(fs.waiters),
            instances=len(ready),
            starting=len(fs.current_slots("starting")),
            max_activate_requests=fs.mar,
            reservation_count=fs.worker.reservation_count,
            replica_count_limit=fs.worker.replica_count_limit,
            idle_for=tuple(0.0 if s.active else now - s.last_used for s in ready),
        )
        delta = fs.policy.evaluate(sample)
        if delta > 0:
            self._start_instances(fs, delta)
        elif delta < 0:
            spare = fs.live() - fs.worker.reservation_count
            victims = sorted(ready, key=SHRINK_ORDER[fs.worker.shrink_strategy])
            for slot in victims[: max(0, min(-delta, spare))]:
                self._drain(fs, slot)
        self._ensure_reservations(fs)

    def _ensure_reservations(self, fs: FunctionState) -> None:
        if fs.worker.disposable:
            have = sum(1 for s in fs.slots if s.version == fs.current.version and not s.used)
        else:
            have = fs.live()
        missing = fs.worker.reservation_count - have
        if missing > 0:
            self._start_instances(fs, missing)

    def _after_change(self, fs: FunctionState) -> None:
        if fs.removed or self.closing:
            return
        self._ensure_reservations(fs)
        self._pump(fs)

    def _after_stop(self) -> None:
        for fs in list(self.functions.values()):
            self._after_change(fs)

    # ---- starting and stopping instances ---------------------------------------------

    def _pool_used(self) -> int:
        return sum(s.memory for fs in self.functions.values() for s in fs.slots) + sum(
            s.memory for s in self.draining
        )

    def _function_used(self, fs: FunctionState) -> int:
        return sum(s.memory for s in fs.slots) + sum(s.memory for s in self.draining if s.function == fs.name)

    def _share_limit(self) -> int:
        return int(self.pool_limit * self.config.function_memory_share)

    def _pool_exhausted(self, fs: FunctionState) -> str | None:
        """Why a queued request of ``fs`` can never be served now (memory pool), or None.

        Only when ``fs`` has no instance at all and nothing draining would free
        enough of the pool: otherwise the request waits in the queue as usual.
        """
        if fs.live() > 0 or fs.removed or self.closing:
            return None
        need = fs.current.profile.resource_limit.memory
        mib = 1 << 20
        if need > self.pool_limit:
            return (
                f"{fs.name!r} needs {need // mib} MiB (resourceLimit.memory) but the whole memory pool "
                f"is {self.pool_limit // mib} MiB: lower resourceLimit.memory or raise "
                "[plugins.scaler_reactive] memory_pool"
            )
        freeing = sum(s.memory for s in self.draining)
        used = self._pool_used()
        if used - freeing + need <= self.pool_limit:
            return None
        return (
            f"no instance of {fs.name!r} can start: the memory pool is exhausted ({used // mib} of "
            f"{self.pool_limit // mib} MiB of instance memory limits in use by busy instances, "
            f"{need // mib} MiB needed); retry later, lower resourceLimit.memory or raise "
            "[plugins.scaler_reactive] memory_pool"
        )

    def _start_instances(self, fs: FunctionState, count: int) -> int:
        """Start up to ``count`` instances within the replica limit and memory pool."""
        if self.closing or fs.removed or trio.current_time() < fs.retry_at:
            return 0
        started = 0
        for _ in range(count):
            if fs.live() >= fs.worker.replica_count_limit:
                break
            need = fs.current.profile.resource_limit.memory
            if fs.live() > 0 and self._function_used(fs) + need > self._share_limit():
                break  # its share of the pool: the rest is for other functions
            if self._pool_used() + need > self.pool_limit:
                self._reclaim(fs, need)
                break
            self._seq += 1
            slot = Slot(fs.current, self._seq, trio.current_time())
            fs.slots.append(slot)
            fs.counters["started"] += 1
            self._spawn(self._start_slot, fs, slot)
            started += 1
        return started

    def _reclaim(self, fs: FunctionState, need: int) -> None:
        """Pool full: stop idle instances of other functions (least recently used first)."""
        if not self.config.reclaim_idle:
            return
        freeing = sum(s.memory for s in self.draining)
        if self._pool_used() - freeing + need <= self.pool_limit:
            return
        candidates = []
        for other in self.functions.values():
            if other is fs:
                continue
            idle = [s for s in other.current_slots("ready") if s.active == 0]
            spare = other.live() - other.worker.reservation_count
            candidates += sorted(idle, key=lambda s: s.last_used)[: max(0, spare)]
        for slot in sorted(candidates, key=lambda s: s.last_used):
            self._drain(self.functions[slot.function], slot)
            freeing += slot.memory
            if self._pool_used() - freeing + need <= self.pool_limit:
                return

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        else:
            self._pending.append((fn, args))

    async def _start_slot(self, fs: FunctionState, slot: Slot) -> None:
        timeout = fs.current.profile.worker.initialization_timeout / 1000
        try:
            with trio.fail_after(timeout):
                handle = await self.factory.start(slot.version_info)
        except (StartError, trio.TooSlowError, OSError, RuntimeError) as exc:
            fatal = isinstance(exc, StartError) and exc.fatal
            message = str(exc) or f"initialization took longer than {timeout:g} s"
            self._start_failed(fs, slot, message, fatal)
            return
        slot.handle = handle
        if fs.removed or self.closing or slot.version != fs.current.version or slot not in fs.slots:
            if slot in fs.slots:
                fs.slots.remove(slot)
            slot.state = "draining"
            self.draining.add(slot)
            await self._stop_slot(fs, slot, self.config.drain_timeout)
            return
        slot.state = "ready"
        slot.last_used = slot.ready_at = trio.current_time()
        fs.failures, fs.fatal = 0, None
        self.log(fs.name, "info", "instance ready", slot.id)
        self._after_change(fs)

    def _start_failed(self, fs: FunctionState, slot: Slot, message: str, fatal: bool) -> None:
        if slot in fs.slots:
            fs.slots.remove(slot)
        slot.state = "stopped"
        fs.failures += 1
        # Fatal errors (bad code) will not heal by retrying: back off up to a minute.
        cap = FATAL_BACKOFF_DOUBLINGS if fatal else 3
        backoff = min(self.config.start_retry_backoff * 2 ** min(fs.failures - 1, cap), FATAL_BACKOFF_MAX)
        fs.retry_at = trio.current_time() + backoff
        repeated = fatal and message == fs.fatal
        if not repeated or fs.failures & (fs.failures - 1) == 0:  # 1st, 2nd, 4th, 8th... repeat
            again = f" (failure {fs.failures}; next retry in {backoff:g} s)" if repeated else ""
            self.log(fs.name, "error", f"instance failed to start: {message}{again}", "")
        if fatal:
            fs.fatal = message
        if fatal or fs.worker.fast_fail_requests_on_starting:
            text = f"an instance of {fs.name!r} failed to start: {message}"
            self._fail_queue(fs, Rejection(503, "start_failed", text, backoff))
        self._spawn(self._retry_later, fs, backoff)

    async def _retry_later(self, fs: FunctionState, delay: float) -> None:
        await trio.sleep(delay)
        self._after_change(fs)

    def _drain(self, fs: FunctionState, slot: Slot) -> None:
        """Close traffic to ``slot`` and stop it once its requests finish."""
        if slot in fs.slots:
            fs.slots.remove(slot)
        slot.state = "draining"
        self.draining.add(slot)
        if slot.active == 0:
            slot.idle.set()
        self._spawn(self._stop_slot, fs, slot, self.config.drain_timeout)

    async def _stop_slot(self, fs: FunctionState, slot: Slot, timeout: float) -> None:
        deadline = trio.current_time() + timeout
        if slot.active == 0:
            slot.idle.set()
        with trio.move_on_at(deadline):
            await slot.idle.wait()
        try:
            await slot.stop(drain_timeout=max(0.0, deadline - trio.current_time()))
        except Exception as exc:  # the process may be gone already
            self.log(fs.name, "warn", f"stopping instance failed: {exc!r}", slot.id)
        self.draining.discard(slot)
        self._stopped_slot(slot)
        self._after_stop()

    def _stopped_slot(self, slot: Slot) -> None:
        slot.state = "stopped"
        slot.idle.set()
        self._stopped.set()
        self._stopped = trio.Event()

    # ---- helpers ---------------------------------------------------------------------

    def _new_policy(self) -> Any:
        return self.policy_spec.factory(**self.config.policy_options)

    def _strategy(self, version: FunctionVersion) -> Any:
        mode = version.profile.worker.dispatch_mode
        spec = self.strategies.get(mode) or self.strategies.get("least-request-count")
        if spec is None:
            raise ValueError(f"dispatch strategy {mode!r} is not registered")
        return spec.choose

    def log(self, function: str, level: str, message: str, instance: str = "") -> None:
        if self._log is not None:
            self._log(function, level, message, instance)
