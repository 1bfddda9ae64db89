"""Seed lifecycle: one seed per function version, forked into instances.

A :class:`SeedSlot` tracks one version's seed: created lazily on the first instance
start (or at deploy through :meth:`SeedManager.prepare_seed`), restarted with backoff
after a crash while the function starts cold, reclaimed when idle, retired when a
newer version is current and its last instance is gone.
"""

from __future__ import annotations

import itertools
import logging
import signal
from typing import Any

import trio
from attrs import define, field

from kernel import warmup
from kernel.errors import DeployError, StartError
from kernel.interfaces import FunctionVersion, SpawnInfo, StartRequest
from kernel.sandbox import Sandbox
from plugins.warmfork.config import WarmforkConfig
from plugins.warmfork.payload import instance_init, seed_payload
from plugins.warmfork.spares import Spare, adopt, fork_spare

log = logging.getLogger("noslate.warmfork")
DEPLOY_GRACE = 30.0
"""Seconds a seed prepared at deploy is kept before its version must be current."""


@define(eq=False)
class SeedSlot:
    """The seed of one function version."""

    function: str
    version: str
    runtime: Any
    fv: FunctionVersion
    seed: Any = None
    error: Exception | None = None
    """A user error from load(): fatal for this version."""
    failures: int = 0
    retry_at: float = 0.0
    last_used: float = 0.0
    instances: set[Any] = field(factory=set)
    starting: trio.Event | None = None
    pool: list[Spare] = field(factory=list)
    """Pre-forked spares, oldest (most warmed) first."""
    spare_filling: bool = False
    retired: bool = False
    keep_until: float = 0.0
    """Not stale before this time (a seed prepared at deploy, not yet current)."""
    seq: itertools.count = field(factory=lambda: _SEED_IDS)
    """Seed ids come from one daemon-wide counter: a new version's seed must never reuse
    the name (and so the cgroup) of an old version's seed that is still being removed."""

    @property
    def spare(self) -> Spare | None:
        """The spare the next start takes, or None."""
        return self.pool[0] if self.pool else None

    def drop_spares(self) -> None:
        for spare in self.pool:
            spare.process.kill(signal.SIGKILL)
            spare.handoff.close()
        self.pool.clear()


_SEED_IDS = itertools.count()


class SeedManager:
    """Creates and keeps seeds; starts instances by forking them (an InstanceStarter)."""

    def __init__(self) -> None:
        self.config = WarmforkConfig()
        self.kernel: Any = None
        self.slots: dict[tuple[str, str], SeedSlot] = {}
        self.nursery: trio.Nursery | None = None
        self._starters: dict[int, RuntimeStarter] = {}
        self._blocked_said: set[tuple[str, str]] = set()
        self.stats = {
            "forks": 0,
            "cold_fallbacks": 0,
            "seeds_started": 0,
            "seed_crashes": 0,
            "seeds_reclaimed": 0,
            "spares_used": 0,
            "warmup_requests": 0,
            "warmup_failures": 0,
        }

    # ---- wiring --------------------------------------------------------------------

    def configure(self, config: WarmforkConfig) -> None:
        self.config = config

    def bind(self, kernel: Any) -> None:
        self.kernel = kernel

    def starter_for(self, runtime: Any) -> RuntimeStarter | None:
        """The starter for ``runtime``, or None when it cannot be seeded."""
        entries = getattr(runtime, "seed_entries", None)
        if not entries or self.kernel is None or getattr(self.kernel, "launcher", None) is None:
            return None
        starter = self._starters.get(id(runtime))
        if starter is None:
            starter = self._starters[id(runtime)] = RuntimeStarter(self, runtime)
        return starter

    def report(self) -> dict[str, Any]:
        """Counters plus one entry per running seed (``/v1/status`` capabilities)."""
        running = [s for s in self.slots.values() if s.seed is not None]
        detail = [
            {
                "function": s.function,
                "version": s.version,
                "pid": s.seed.pid,
                "instances": sorted(p.pid for p in s.instances),
                "spare": s.spare.process.pid if s.spare is not None else None,
                "spares": [sp.process.pid for sp in s.pool],
            }
            for s in running
        ]
        return {"seeds": len(running), **self.stats, "seed_processes": detail}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Background work: watch processes, fill spares, reclaim idle and old seeds."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            task_status.started()
            while True:
                await trio.sleep(self._tick())
                self.reclaim()

    def _tick(self) -> float:
        idle = self.config.seed_idle_timeout
        return min(5.0, idle / 4) if idle > 0 else 5.0

    def close(self) -> None:
        for slot in list(self.slots.values()):
            self._retire(slot)
        self.slots.clear()

    # ---- seeds ---------------------------------------------------------------------

    def _slot(self, fv: FunctionVersion, runtime: Any) -> SeedSlot:
        key = (fv.name, fv.version)
        slot = self.slots.get(key)
        if slot is None or slot.retired:
            slot = self.slots[key] = SeedSlot(fv.name, fv.version, runtime, fv)
        return slot

    async def prepare_seed(self, fv: FunctionVersion, runtime: Any) -> None:
        """Start the version's seed now; raise DeployError with the user's error if init throws.

        Called before the version is stored (and current): the seed is kept for
        ``DEPLOY_GRACE`` seconds even though another version is still current.
        """
        for other in self.slots.values():
            if other.function == fv.name:
                other.keep_until = 0.0  # superseded by this deploy
        if self._blocked(runtime, fv):
            return
        slot = self._slot(fv, runtime)
        slot.keep_until = trio.current_time() + DEPLOY_GRACE
        try:
            await self._ensure_seed(slot, wait=True)
        except StartError as exc:
            if slot.error is not None:
                self._retire(slot)
                raise DeployError(str(slot.error)) from exc
            log.warning("seed of %s@%s could not start (will start cold): %s", fv.name, fv.version, exc)

    async def _ensure_seed(self, slot: SeedSlot, *, wait: bool) -> Any:
        """The running seed, starting it if needed; None while backing off after crashes."""
        if slot.error is not None:
            raise StartError(str(slot.error), fatal=True)
        if slot.seed is not None and slot.seed.alive:
            return slot.seed
        if slot.starting is None:
            if trio.current_time() < slot.retry_at:
                return None
            slot.starting = trio.Event()
            if not wait:
                assert self.nursery is not None
                self.nursery.start_soon(self._start_seed, slot)
                return None
            await self._start_seed(slot)
        elif not wait:
            return None
        else:
            await slot.starting.wait()
        if slot.error is not None:
            raise StartError(str(slot.error), fatal=True)
        return slot.seed

    async def _start_seed(self, slot: SeedSlot) -> None:
        from kernel.launcher.client import SeedError

        done = slot.starting
        assert done is not None
        fv, kernel = slot.fv, self.kernel
        seed_id = f"{slot.function}-seed-{next(slot.seq)}"
        sandbox = Sandbox()
        sandbox.process.title = f"noslate:{slot.function}@{slot.version[:19]}#seed"
        sandbox.annotations.update(
            {
                "noslate.function": slot.function,
                "noslate.version": slot.version,
                "noslate.instance": seed_id,
                "noslate.role": "seed",
            }
        )
        kernel.hooks.sandbox_contribute(sandbox=sandbox, function=fv.profile, role="seed")
        load_entry = slot.runtime.seed_entries[0]
        try:
            seed = await kernel.launcher.fork_seed(
                entry=load_entry,
                payload=seed_payload(slot.runtime, fv, seed_id),
                sandbox=sandbox,
                info=SpawnInfo(slot.function, slot.version, seed_id, "seed"),
                timeout=self.config.seed_start_timeout,
            )
        except SeedError as exc:
            slot.error = exc
            kernel.log(slot.function, "error", f"seed of version {slot.version} failed to load: {exc}")
        except Exception as exc:
            self._backoff(slot, f"seed of version {slot.version} could not start: {exc}")
        else:
            slot.seed = seed
            slot.last_used = trio.current_time()
            self.stats["seeds_started"] += 1
            kernel.log(
                slot.function,
                "info",
                f"seed {seed.pid} of version {slot.version} ready in "
                f"{seed.timings.get('ready_ms', 0):.1f} ms",
            )
            self._log_warmup(slot, seed)
            assert self.nursery is not None
            self.nursery.start_soon(self._watch_seed, slot, seed)
            self._fill_spare(slot)
        finally:
            slot.starting = None
            done.set()

    def _log_warmup(self, slot: SeedSlot, seed: Any) -> None:
        """The seed's warm-up outcome (``worker.warmup``) in the function log; a
        request that failed is a warning (the seed serves all the same)."""
        report = (seed.report or {}).get("warmup") or []
        if not report:
            return
        failed = [r for r in report if warmup.failed(r)]
        self.stats["warmup_requests"] += len(report)
        self.stats["warmup_failures"] += len(failed)
        text = f"warm-up of version {slot.version}: {warmup.describe(report)}"
        logs = [line for r in report for line in r.get("log", [])]
        if logs:
            text += "; its log: " + " | ".join(logs)
        self.kernel.log(slot.function, "warning" if failed else "info", text)

    def _backoff(self, slot: SeedSlot, message: str) -> None:
        slot.failures += 1
        delay = min(self.config.restart_backoff_max, self.config.restart_backoff * 2 ** (slot.failures - 1))
        slot.retry_at = trio.current_time() + delay
        self.kernel.log(slot.function, "warning", f"{message}; instances start cold, retry in {delay:.1f} s")

    async def _watch_seed(self, slot: SeedSlot, seed: Any) -> None:
        status = await seed.wait()
        if slot.seed is seed:
            slot.seed = None
        slot.drop_spares()
        if not slot.retired:
            self.stats["seed_crashes"] += 1
            self._backoff(slot, f"seed {seed.pid} of version {slot.version} exited ({status})")

    def _retire(self, slot: SeedSlot) -> None:
        slot.retired = True
        slot.drop_spares()
        if slot.seed is not None:
            slot.seed.kill(signal.SIGKILL)
            slot.seed = None
        if self.slots.get((slot.function, slot.version)) is slot:
            del self.slots[(slot.function, slot.version)]

    def _current(self, function: str) -> str | None:
        current = getattr(self.kernel, "current_version", lambda _n: None)(function)
        return getattr(current, "version", None)

    def _stale(self, slot: SeedSlot, now: float) -> bool:
        """Not the current version of its function (replaced or deleted), nothing running."""
        if slot.instances or slot.starting is not None or slot.spare_filling:
            return False
        if self._current(slot.function) == slot.version:
            slot.keep_until = 0.0  # stored and current: the deploy grace is over
            return False
        return now >= slot.keep_until

    def _retire_stale(self, function: str) -> None:
        """Seeds of replaced versions of ``function`` go once their last instance is gone."""
        now = trio.current_time()
        for slot in list(self.slots.values()):
            if slot.function == function and self._stale(slot, now):
                self._retire(slot)

    def reclaim(self) -> None:
        """Retire idle seeds and seeds of replaced or deleted versions with no instances left."""
        now = trio.current_time()
        idle = self.config.seed_idle_timeout
        for slot in list(self.slots.values()):
            if slot.instances or slot.starting is not None:
                continue
            idle_seed = idle > 0 and slot.seed is not None and now - slot.last_used > idle
            if self._stale(slot, now) or (idle_seed and not slot.spare_filling):
                self.stats["seeds_reclaimed"] += 1
                self._retire(slot)

    # ---- instances -----------------------------------------------------------------

    def _blocked(self, runtime: Any, fv: FunctionVersion) -> bool:
        """True when the runtime says this version cannot be seeded (e.g. it asks for V8
        flags a fork cannot get): its instances start cold. Said once per version in
        the function's log."""
        reason = getattr(runtime, "seed_blocker", lambda _profile: None)(fv.profile)
        if reason is None:
            return False
        key = (fv.name, fv.version)
        if key not in self._blocked_said:
            self._blocked_said.add(key)
            self.kernel.log(fv.name, "warning", f"version {fv.version} is not seeded: {reason}")
        return True

    async def start(self, runtime: Any, request: StartRequest) -> Any:
        fv = request.version
        if self._blocked(runtime, fv):
            return await self._cold(runtime, request)
        slot = self._slot(fv, runtime)
        slot.keep_until = 0.0  # the kernel starts only stored versions
        self._retire_stale(fv.name)
        seed = await self._ensure_seed(slot, wait=slot.failures == 0)
        if seed is None:
            return await self._cold(runtime, request)
        slot.last_used = trio.current_time()
        init = instance_init(runtime, request)
        try:
            spare = self._take_spare(slot)
            if spare is not None:
                proc = await adopt(spare, request.channel_fd, init)
                proc.serving = True  # waiting in serve_spare: its Hello comes before any read
                self.stats["spares_used"] += 1
            else:
                proc = await seed.fork_instance(
                    entry=runtime.seed_entries[1],
                    payload=init,
                    channel_fd=request.channel_fd,
                    sandbox=request.sandbox,
                    info=SpawnInfo(fv.name, fv.version, request.instance, "instance"),
                    timeout=self.config.fork_timeout,
                )
        except StartError as exc:
            if seed.alive:
                raise
            log.info("seed of %s died during a fork (%s): starting cold", fv.name, exc)
            return await self._cold(runtime, request)
        self.stats["forks"] += 1
        self._track(slot, proc)
        self._fill_spare(slot)
        return proc

    def _track(self, slot: SeedSlot, proc: Any) -> None:
        slot.instances.add(proc)

        def exited() -> None:
            slot.instances.discard(proc)
            slot.last_used = trio.current_time()
            if self._stale(slot, slot.last_used):
                self._retire(slot)

        on_exit = getattr(proc, "on_exit", None)
        if on_exit is not None:  # a launcher process: no task per instance
            on_exit(exited)
            return

        async def watch() -> None:
            await proc.wait()
            exited()

        assert self.nursery is not None
        self.nursery.start_soon(watch)

    def _spare_target(self, slot: SeedSlot) -> int:
        """How many spares ``slot`` keeps: ``spares``, at least ``disposable_spares`` for a
        disposable function (every request of which needs a new instance)."""
        disposable = getattr(slot.fv.profile.worker, "disposable", False)
        return max(self.config.spares, self.config.disposable_spares if disposable else 0)

    def _take_spare(self, slot: SeedSlot) -> Spare | None:
        """The oldest live spare (dropping dead ones), or None."""
        while slot.pool:
            spare = slot.pool.pop(0)
            if spare.process.alive:
                return spare
            spare.handoff.close()
        return None

    def _fill_spare(self, slot: SeedSlot) -> None:
        """Refill the slot's spares in the background, one fork at a time, each once the
        seed has started no instance for ``refill_delay`` seconds: a spare's fork and
        warm-up then never share the cores with the request a new instance serves, and
        under sustained load (every start forks on the request path anyway) no CPU goes
        into spares that are taken as soon as they are ready."""
        target = self._spare_target(slot)
        if target < 1 or len(slot.pool) >= target or slot.spare_filling or slot.retired:
            return
        slot.spare_filling = True

        async def fill() -> None:
            try:
                while len(slot.pool) < self._spare_target(slot) and not slot.retired:
                    if slot.seed is None or not slot.seed.alive:
                        break
                    quiet_at = slot.last_used + self.config.refill_delay
                    if trio.current_time() < quiet_at:
                        await trio.sleep(quiet_at - trio.current_time())
                        continue
                    spare = await fork_spare(self, slot)
                    if slot.retired:
                        spare.process.kill(signal.SIGKILL)
                        spare.handoff.close()
                        break
                    slot.pool.append(spare)
            except Exception as exc:
                log.warning("could not pre-fork a spare of %s: %s", slot.function, exc)
            finally:
                slot.spare_filling = False

        assert self.nursery is not None
        self.nursery.start_soon(fill)

    async def _cold(self, runtime: Any, request: StartRequest) -> Any:
        """Start without a seed: the sandbox is rebuilt for the ``cold`` role."""
        self.stats["cold_fallbacks"] += 1
        profile = request.version.profile
        sandbox = Sandbox()
        sandbox.process.title = request.sandbox.process.title
        sandbox.annotations.update({**request.sandbox.annotations, "noslate.role": "cold"})
        self.kernel.hooks.sandbox_contribute(sandbox=sandbox, function=profile, role="cold")
        cold = StartRequest(request.version, request.instance, request.channel_fd, sandbox, "cold")
        return await runtime.start(cold)


class RuntimeStarter:
    """The InstanceStarter handed to the kernel for one runtime."""

    def __init__(self, manager: SeedManager, runtime: Any) -> None:
        self.manager = manager
        self.runtime = runtime

    async def start(self, request: StartRequest) -> Any:
        return await self.manager.start(self.runtime, request)

    async def prepare_seed(self, version: FunctionVersion) -> None:
        """At deploy: start the seed; raise DeployError with the user's error if init throws."""
        if self.manager.config.prepare_at_deploy:
            await self.manager.prepare_seed(version, self.runtime)

    def discard(self, function: str, version: str | None = None) -> None:
        for slot in list(self.manager.slots.values()):
            if slot.function == function and (version is None or slot.version != version):
                self.manager._retire(slot)
