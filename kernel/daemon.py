"""``noslate serve``: one trio program running the kernel's services and two listeners.

Start-up: config and plugins -> registry -> launcher -> KV backend -> scheduler ->
watchdog -> ``noslate_startup`` -> plugin services -> redeploy stored functions ->
data plane and control API listeners -> ``state_dir/daemon.json``.
SIGTERM/SIGINT: ``draining`` (readyz fails, new requests get 503), the data listener
stops accepting and in-flight requests finish (up to ``grace_period``), every
instance is stopped, plugins shut down, exit 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve as hyper_serve

from kernel.buildjob import BuildJobs
from kernel.caps import cap_errors
from kernel.config import Config, load_config_and_plugins
from kernel.dataplane import DataPlane
from kernel.errors import BadSettingError, DeployError, ProfileError, StartupError
from kernel.instances import InstanceFactory, describe_exit
from kernel.interfaces import FunctionVersion, SchedulerContext
from kernel.logs import FunctionLogs, setup_daemon_logging
from kernel.metrics import Metrics
from kernel.namespaces import namespace_errors
from kernel.profile import FunctionProfile, parse_profile
from kernel.registry import Registry, StoredFunction, version_id
from kernel.watchdog import Watchdog

log = logging.getLogger("noslate.daemon")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class Kernel:
    """The running daemon as plugins, the data plane and the control API see it."""

    def __init__(self, config: Config, pm: Any) -> None:
        self.config = config
        self.plugin_manager = pm
        self.hooks = pm.hooks
        self.state_dir = Path(config.server.state_dir)
        self.registry = Registry(self.state_dir, config.server.max_code_size)
        self.jobs = BuildJobs(self)
        self.logs = FunctionLogs(config.logging.function_log_lines, config.logging.function_log_rate)
        self.metrics = Metrics()
        self.control_token = config.control_token()
        self.draining = False
        self.started_at = time.time()
        self.scheduler: Any = None
        self.kv: Any = None
        self.launcher: Any = None
        self.factory: InstanceFactory | None = None
        self.nursery: trio.Nursery | None = None
        self.data_address = ""
        self.control_address = ""
        self.metrics_address = ""
        self.layers = self.hooks.isolation_layers()
        self._runtime_specs = self.hooks.runtimes()
        self._runtimes: dict[str, Any] = {}
        self._versions: dict[str, Any] = {}
        self._deploy_lock = trio.Lock()
        self._pending: list[FunctionVersion] = []
        self.shared: Any = None
        """The shared registry (``[registry] backend``), None with the embedded SQLite."""
        self.dataplane: DataPlane | None = None
        self._saturated = False
        self.leaving = False
        """``noslate drain`` (``POST /v1/drain``): not ready, still serving."""

    # ---- lookups --------------------------------------------------------------------
    def runtime(self, name: str) -> Any:
        """The runtime a profile's ``runtime`` names (created on first use), or None."""
        if name not in self._runtimes:
            spec = self._runtime_specs.get(name)
            if spec is None:
                return None
            self._runtimes[name] = spec.factory(self)
        return self._runtimes[name]

    def runtime_names(self) -> list[str]:
        return sorted(self._runtime_specs)

    def current_version(self, name: str) -> Any:
        return self._versions.get(name)

    def instances(self) -> list[Any]:
        if self.scheduler is not None:
            return list(self.scheduler.instances())
        return list(self.factory.live.values()) if self.factory else []

    # ---- events ---------------------------------------------------------------------
    def log(self, function: str, level: str, message: str, instance: str = "", *, limit: bool = True) -> None:
        """A line for ``function``'s log (errors also go to the daemon's log).

        ``limit=False`` for the kernel's own important lines: never rate-limited.
        """
        if self.logs.append(function, level, message, instance, limit=limit) is None:
            return  # over the function's log rate: dropped and counted
        if level in ("error", "warning"):
            log.log(
                logging.WARNING if level == "warning" else logging.ERROR,
                "[%s] %s",
                instance or function,
                message.splitlines()[0][:500] if message else "",
            )

    def instance_exited(self, inst: Any, cause: str) -> None:
        if self.factory is not None:
            self.factory.live.pop(inst.id, None)
        self.metrics.instance_exits.labels(inst.function, cause.split(" ")[0]).inc()
        if cause == "oom":
            self.metrics.oom_kills.labels(inst.function).inc()
        elif cause in ("cpu-limit", "idle-cpu-limit"):
            self.metrics.cpu_limit_kills.labels(inst.function).inc()
        if cause not in ("stopped", "exit 0"):
            self.log(inst.function, "error", describe_exit(inst), instance=inst.id, limit=False)
        if self.scheduler is not None:
            try:
                self.scheduler.instance_exited(inst, cause)
            except Exception:
                log.exception("scheduler failed to handle the exit of %s", inst.id)

    def refresh_metrics(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        for inst in self.instances():
            key = (inst.function, inst.state)
            counts[key] = counts.get(key, 0) + 1
        self.metrics.set_instance_gauges(counts)
        stats = self.scheduler.statistics() if self.scheduler is not None else {}
        depths, in_flight = {}, {}
        for name, data in (stats.get("functions", stats) or {}).items():
            if isinstance(data, dict) and isinstance(data.get("queued"), int):
                depths[name] = data["queued"]
            if isinstance(data, dict) and isinstance(data.get("inflight"), int):
                in_flight[name] = data["inflight"]
        m = self.metrics
        m.set_queue_depths(depths)
        m.set_in_flight(in_flight)
        m.daemon_in_flight.set(self.dataplane.in_flight if self.dataplane is not None else 0)
        m.daemon_queued.set(sum(depths.values()))
        pool = stats.get("memory_pool") or {}
        m.pool_used.set(pool.get("used", 0))
        m.pool_limit.set(pool.get("limit", 0))
        level = self.saturation()
        m.saturation.set(level)
        m.ready.set(1 if self.ready(level) else 0)

    def saturation(self) -> float:
        """The scheduler's saturation (0..1), 0 when it reports none."""
        measure = getattr(self.scheduler, "saturation", None)
        try:
            return float(measure()) if callable(measure) else 0.0
        except Exception:
            log.exception("the scheduler's saturation failed")
            return 0.0

    def ready(self, level: float | None = None) -> bool:
        """Whether ``/readyz`` answers 200: not draining, and not saturated. Saturation at
        or above ``[server] ready_saturation_high`` makes the daemon not ready until it
        falls below ``ready_saturation_low`` (hysteresis, so a balancer sees no flapping)."""
        if self.draining or self.leaving:
            return False
        level = self.saturation() if level is None else level
        server = self.config.server
        if self._saturated:
            self._saturated = level >= server.ready_saturation_low
        else:
            self._saturated = level >= server.ready_saturation_high
        return not self._saturated

    # ---- deploy -----------------------------------------------------------------------
    async def deploy(
        self, name: str, code: bytes, filename: str, profile: FunctionProfile | dict[str, Any] | None
    ) -> StoredFunction:
        """Validate, prepare and store a new version of ``name``; make it current."""
        if not isinstance(profile, FunctionProfile):
            data = dict(profile or {})
            if data.setdefault("name", name) != name:
                raise ProfileError(
                    [f"profile name {data['name']!r} differs from the function name {name!r} @ $.name"]
                )
            profile = parse_profile(data)
        elif profile.name != name:
            raise ProfileError(
                [f"profile name {profile.name!r} differs from the function name {name!r} @ $.name"]
            )
        errors = cap_errors(profile, self.config.limits) + self._namespace_errors(profile)
        if errors:
            raise ProfileError(errors)
        runtime = self.runtime(profile.runtime)
        if runtime is None:
            choices = ", ".join(self.runtime_names()) or "none (no runtime plugin is enabled)"
            raise ProfileError([f"unknown runtime {profile.runtime!r}; available: {choices} @ $.runtime"])
        self.registry.check_size(code)
        try:
            artifact = await runtime.prepare(code, filename, profile)
        except DeployError:
            raise
        except Exception as exc:
            log.exception("runtime %s failed to prepare %s", profile.runtime, name)
            raise DeployError(f"the {profile.runtime} runtime could not prepare the code: {exc}") from exc
        now = time.time()
        pending = FunctionVersion(profile, version_id(code, profile, now), artifact, now)
        self._pending.append(pending)  # no checkpoint since prepare: its outputs are kept
        try:
            await self._prepare_seed(runtime, pending)
            async with self._deploy_lock:
                errors = self._namespace_errors(profile)  # again: another deploy may have won
                if errors:
                    raise ProfileError(errors)
                if self.shared is not None:  # the source of truth first: all or nothing
                    await self.shared.put(StoredFunction(pending, filename, code))
                stored = self._store_locally(StoredFunction(pending, filename, code))
        finally:
            self._pending.remove(pending)
        self._retain()
        self.log(name, "info", f"deployed version {stored.version.version} ({filename}, {len(code)} bytes)")
        return stored

    def _seed_starter(self, runtime: Any, profile: FunctionProfile) -> Any:
        """The instance starter (warmfork) offering ``prepare_seed`` for ``profile``, or None."""
        if profile.worker.disable_seed:
            return None
        starter = self.hooks.instance_starter(runtime=runtime, function=profile)
        return starter if callable(getattr(starter, "prepare_seed", None)) else None

    async def _prepare_seed(self, runtime: Any, fv: FunctionVersion) -> None:
        """Start the version's seed before it is stored: an init error fails the deploy."""
        starter = self._seed_starter(runtime, fv.profile)
        if starter is None:
            return
        try:
            await starter.prepare_seed(fv)
        except DeployError:
            raise
        except Exception:
            # not the user's fault: instances will start cold or retry the seed lazily
            log.exception("could not prepare the seed of %s", fv.name)

    async def _prepare_stored_seeds(self, versions: list[FunctionVersion]) -> None:
        """At start-up: bring redeployed functions' seeds up in the background."""
        for fv in versions:
            runtime = self.runtime(fv.profile.runtime)
            if runtime is None or self.current_version(fv.name) is not fv:
                continue
            try:
                await self._prepare_seed(runtime, fv)
            except DeployError as exc:
                self.log(fv.name, "error", f"the stored version no longer loads: {exc}")

    async def delete(self, name: str) -> bool:
        async with self._deploy_lock:
            if self.shared is not None:
                await self.shared.delete(name)
            existed = self._remove_locally(name)
        self._retain()
        if existed:
            self.log(name, "info", "deleted")
        return existed

    # ---- a shared registry (many daemons) -------------------------------------------------
    async def sync_shared(self) -> int:
        """Bring the local registry in line with the shared one; return how many changed."""
        if self.shared is None:
            return 0
        remote = await self.shared.versions()
        local = self.registry.versions()
        changed = 0
        for name in sorted(set(remote) | set(local)):
            if remote.get(name) != local.get(name) or (name in remote) != (name in self._versions):
                changed += await self.apply_shared(name)
        return changed

    async def apply_shared(self, name: str) -> int:
        """Apply the shared registry's state of ``name`` here (1 when something changed)."""
        assert self.shared is not None
        stored = await self.shared.get(name)
        async with self._deploy_lock:
            current = self._versions.get(name)
            if stored is None:
                if current is None and self.registry.get(name) is None:
                    return 0
                self._remove_locally(name)
                self.log(name, "info", "deleted (through another daemon)")
                return 1
            fv = stored.version
            if current is not None and current.version == fv.version:
                return 0
            if self.runtime(fv.profile.runtime) is None:
                self.log(name, "error", f"not served here: this daemon has no runtime {fv.profile.runtime!r}")
                return 0
            self._store_locally(stored)
        self.log(name, "info", f"deployed version {fv.version} (through another daemon)")
        self._retain()
        if self.nursery is not None:
            self.nursery.start_soon(self._prepare_stored_seeds, [fv])
        return 1

    def _store_locally(self, stored: StoredFunction) -> StoredFunction:
        """Under the deploy lock: make ``stored`` this daemon's current version of its function."""
        fv = stored.version
        kept = self.registry.put(
            fv.profile, stored.code, stored.filename, fv.artifact, now=fv.deployed_at, version=fv.version
        )
        self._versions[fv.name] = kept.version
        if self.scheduler is not None:
            self.scheduler.deploy(kept.version)
        return kept

    def _remove_locally(self, name: str) -> bool:
        """Under the deploy lock: forget ``name`` here (registry, scheduler, KV); True if stored."""
        existed = self.registry.delete(name)
        gone = self._versions.pop(name, None)
        if self.scheduler is not None:
            self.scheduler.remove(name)
        self._drop_kv(gone)
        return existed

    def _namespace_errors(self, profile: FunctionProfile) -> list[str]:
        return namespace_errors(profile, self.registry, self._versions)

    def _retain(self) -> None:
        """Let runtimes delete deploy outputs (snapshot blobs) of versions no longer in use."""
        live = [*self._versions.values(), *self._pending]
        for runtime in list(self._runtimes.values()):
            retain = getattr(runtime, "retain", None)
            if callable(retain):
                try:
                    retain(live)
                except Exception:
                    log.exception(
                        "runtime %s could not prune its deploy outputs", getattr(runtime, "name", "?")
                    )

    def _drop_kv(self, version: Any) -> None:
        """Free a deleted function's KV stores unless another function shares its namespace."""
        clear = getattr(self.kv, "clear", None)
        if version is None or clear is None:
            return
        namespace = version.profile.kv_namespace
        if any(v.profile.kv_namespace == namespace for v in self._versions.values()):
            return
        try:
            clear(namespace)
        except Exception:
            log.exception("could not clear the KV stores of namespace %r", namespace)


LINGER = 0.2
"""Seconds the data listener may take to close connections after its last request
finished, once draining (then it is cancelled)."""

MAX_REQUEST_HEAD = 64 * 1024
"""Request line plus headers, bytes (hypercorn's ``h11_max_incomplete_size``)."""


def _hyper_config(bind: str, graceful: float) -> HyperConfig:
    cfg = HyperConfig()
    cfg.bind = [bind]
    cfg.graceful_timeout = graceful
    cfg.keep_alive_timeout = 75
    # h11 enforces its head-size limit only while a head is still incomplete, so with
    # hypercorn's 16 KiB default a 20-60 KiB request head passed or got 431 depending on
    # how TCP split it. Heads up to 64 KiB are now always accepted; larger ones get 431.
    cfg.h11_max_incomplete_size = MAX_REQUEST_HEAD
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("hypercorn.error")
    return cfg


async def _serve_listener(
    app: Any,
    cfg: HyperConfig,
    trigger: trio.Event,
    done: trio.Event,
    scope: trio.CancelScope | None = None,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    from kernel.listener import install as guard_connections

    guard_connections()  # a failing connection must never end the listener
    try:
        with scope or trio.CancelScope():
            await hyper_serve(app, cfg, shutdown_trigger=trigger.wait, task_status=task_status)
    finally:
        done.set()


def _address(binds: list[str]) -> str:
    return binds[0].removeprefix("http://") if binds else ""


def _make_control_app(kernel: Kernel) -> Any:
    try:
        from kernel.control import make_app
    except ImportError:
        log.warning("kernel.control is not available: the control API is not served")
        return None
    return make_app(kernel)


async def _open_shared_registry(kernel: Kernel, nursery: trio.Nursery) -> None:
    """Connect to ``[registry] backend`` (when shared), sync the local cache, watch it.

    Unreachable at start: a daemon that has synced before serves its local cache and
    keeps trying; one that never has exits (status 2). A wrong DSN or schema always exits."""
    name = kernel.config.registry.backend
    if name == "sqlite":
        return
    specs = kernel.hooks.registry_backends()
    shared = _pick(specs, name, "registry backend", "[registry] backend").factory(kernel)
    from kernel.interfaces import RegistryUnavailable

    try:
        await shared.open()
        await _sync_with(kernel, shared)
    except RegistryUnavailable as exc:
        if kernel.registry.meta("shared_synced") != shared.name:
            raise BadSettingError(
                f"{exc}; this daemon has never synced with it, so it cannot start"
            ) from None
        log.warning("%s; serving the functions of the last sync until it is back", exc)
        kernel.shared = shared
    nursery.start_soon(shared.run)


async def _sync_with(kernel: Kernel, shared: Any) -> None:
    kernel.shared = shared
    changed = await kernel.sync_shared()
    kernel.registry.set_meta("shared_synced", shared.name)
    log.info("registry %s: in sync (%d change(s) applied)", shared.name, changed)


async def _start_launcher(kernel: Kernel) -> Any:
    try:
        from kernel.launcher.client import Launcher
    except ImportError:
        log.warning("kernel.launcher.client is not available: runtimes must start workers themselves")
        return None
    source = kernel.config.source
    config_path = source if source and not source.startswith("<") else None
    # The launcher loads the same plugins: it must see the same import path.
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else None
    return await Launcher.start(
        env=env,
        preload=kernel.hooks.launcher_preload(),
        layers=kernel.layers,
        config_path=config_path,
        nursery=kernel.nursery,
    )


def _pick(specs: dict[str, Any], name: str, what: str, key: str) -> Any:
    if name not in specs:
        choices = ", ".join(sorted(specs)) or "none (enable a plugin that provides one)"
        raise StartupError(f"{what} {name!r} ({key}) is not recognized; choose one of: {choices}")
    return specs[name]


async def run(
    config: Config, pm: Any, *, task_status: trio.TaskStatus[Kernel] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the daemon until SIGTERM/SIGINT (or cancellation), then drain and stop."""
    server = config.server
    token = config.control_token()
    host = server.control_bind.rsplit(":", 1)[0]
    if not token and not server.control_bind.startswith("unix:") and host not in LOOPBACK:
        raise StartupError(
            f"refusing to serve the control API on non-loopback {server.control_bind} without a token: "
            "set [control] token or NOSLATE_CONTROL_TOKEN"
        )
    from kernel import preflight

    preflight.check_bind(server.data_bind, "[server] data_bind", "--data-bind")
    preflight.check_bind(server.control_bind, "[server] control_bind", "--control-bind")
    lock = preflight.claim_state_dir(Path(server.state_dir))
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            kernel = Kernel(config, pm)
            hooks = kernel.hooks
            hooks.configure(config)
            for plugin, report in hooks.capability_reports().items():
                log.info("capabilities of %s: %s", plugin, json.dumps(report, default=str))
            try:
                async with trio.open_nursery() as nursery:
                    kernel.nursery = nursery
                    await _run_in(kernel, nursery, signals, task_status)
                    nursery.cancel_scope.cancel()
            finally:
                (kernel.state_dir / "daemon.json").unlink(missing_ok=True)
                kernel.registry.close()
    finally:
        preflight.release_state_dir(lock)


async def _run_in(kernel: Kernel, nursery: trio.Nursery, signals: Any, task_status: Any) -> None:
    config, hooks, server = kernel.config, kernel.hooks, kernel.config.server
    kernel.launcher = await _start_launcher(kernel)
    kv_specs = hooks.kv_backends()
    if kv_specs:
        kernel.kv = _pick(kv_specs, config.kv.backend, "KV backend", "[kv] backend").factory(kernel)
    kernel.factory = InstanceFactory(kernel, nursery)
    spec = _pick(hooks.schedulers(), config.scheduling.scheduler, "scheduler", "[scheduling] scheduler")
    ctx = SchedulerContext(kernel, kernel.factory, hooks.dispatch_strategies(), hooks.scaling_policies())
    kernel.scheduler = spec.factory(ctx)
    await nursery.start(kernel.scheduler.run)
    watchdog = Watchdog(
        lambda: list(kernel.factory.live.values()),
        idle_share=server.idle_cpu_share,
        idle_window=server.idle_cpu_window,
    )
    await nursery.start(watchdog.run)
    hooks.startup(kernel)
    for service in hooks.services(kernel):
        await nursery.start(service.run)
    redeployed = []
    kernel.registry.claim_unowned_namespaces()
    for stored in kernel.registry.all():
        kernel._versions[stored.name] = stored.version
        try:
            kernel.scheduler.deploy(stored.version)
        except Exception:
            log.exception("could not redeploy %s", stored.name)
        else:
            redeployed.append(stored.version)
    await _open_shared_registry(kernel, nursery)  # after the local cache: apply what changed
    if redeployed:
        nursery.start_soon(kernel._prepare_stored_seeds, redeployed)
    for name in {fv.profile.runtime for fv in redeployed}:
        kernel.runtime(name)  # created now, so that it prunes what old versions left
    kernel._retain()
    data_stop, data_done, data_scope = trio.Event(), trio.Event(), trio.CancelScope()
    control_stop, control_done = trio.Event(), trio.Event()
    dataplane = DataPlane(kernel)
    binds = await nursery.start(
        _serve_listener,
        dataplane,
        _hyper_config(server.data_bind, server.grace_period),
        data_stop,
        data_done,
        data_scope,
    )
    kernel.dataplane = dataplane
    kernel.data_address = _address(binds)
    control_app = _make_control_app(kernel)
    if control_app is not None:
        binds = await nursery.start(
            _serve_listener, control_app, _hyper_config(server.control_bind, 1.0), control_stop, control_done
        )
        kernel.control_address = _address(binds)
    else:
        control_done.set()
    metrics_done = trio.Event()
    if server.metrics_bind:
        from kernel.control import make_metrics_app

        binds = await nursery.start(
            _serve_listener,
            make_metrics_app(kernel),
            _hyper_config(server.metrics_bind, 1.0),
            control_stop,
            metrics_done,
        )
        kernel.metrics_address = _address(binds)
    else:
        metrics_done.set()
    info = {
        "pid": os.getpid(),
        "data": kernel.data_address,
        "control": kernel.control_address,
        "data_url": f"http://{kernel.data_address}",
        "control_url": f"http://{kernel.control_address}"
        if not kernel.control_address.startswith("unix:")
        else kernel.control_address,
        "started_at": kernel.started_at,
        "metrics_url": f"http://{kernel.metrics_address}" if kernel.metrics_address else "",
    }
    tmp = kernel.state_dir / "daemon.json.tmp"
    tmp.write_text(json.dumps(info))
    tmp.replace(kernel.state_dir / "daemon.json")
    log.info("serving: data plane http://%s, control API %s", kernel.data_address, info["control_url"])
    task_status.started(kernel)
    async for signum in signals:
        log.info(
            "received %s: draining (grace period %.0f s)", signal.Signals(signum).name, server.grace_period
        )
        break
    await shutdown(kernel, data_stop, data_done, control_stop, control_done, data_scope, metrics_done)


async def shutdown(
    kernel: Kernel,
    data_stop: trio.Event,
    data_done: trio.Event,
    control_stop: trio.Event,
    control_done: trio.Event,
    data_scope: trio.CancelScope | None = None,
    metrics_done: trio.Event | None = None,
) -> None:
    """Drain: stop accepting, let in-flight requests finish, stop every worker.

    The data listener gets ``LINGER`` seconds after its last in-flight request to
    close its connections, then it is cancelled: hypercorn itself waits the whole
    grace period for connections it still holds (measured: 7 of 11 SIGTERMs under
    load waited 30 s with nothing in flight), which would cost every rolling update
    and scale-in the grace period per pod."""
    grace = kernel.config.server.grace_period
    deadline = trio.current_time() + grace
    kernel.draining = True
    data_stop.set()
    # Concurrently: the listener finishes in-flight responses while the scheduler
    # fails its queues at once (503 shutting_down) and stops instances as they idle.
    async with trio.open_nursery() as n:
        n.start_soon(_drain_scheduler, kernel, grace)
        dataplane = getattr(kernel, "dataplane", None)
        with trio.move_on_at(deadline + 1):
            if dataplane is not None and data_scope is not None:
                async with trio.open_nursery() as waiters:

                    async def listener_done() -> None:
                        await data_done.wait()
                        waiters.cancel_scope.cancel()

                    async def idle_then_linger() -> None:
                        await dataplane.wait_idle()
                        await trio.sleep(LINGER)
                        data_scope.cancel()  # connections idle or half-closed: stop now

                    waiters.start_soon(listener_done)
                    waiters.start_soon(idle_then_linger)
            await data_done.wait()
    if kernel.factory is not None:
        async with trio.open_nursery() as n:
            for inst in list(kernel.factory.live.values()):
                n.start_soon(partial(inst.stop, drain_timeout=0))
    for error in kernel.hooks.shutdown(kernel):
        log.error("shutdown hook failed: %s", error)
    if kernel.launcher is not None:
        with trio.move_on_after(5):
            try:
                await kernel.launcher.aclose()
            except Exception:
                log.exception("stopping the launcher failed")
    control_stop.set()
    with trio.move_on_after(2):
        await control_done.wait()
        if metrics_done is not None:
            await metrics_done.wait()


async def _drain_scheduler(kernel: Kernel, grace: float) -> None:
    with trio.move_on_after(grace + 5):
        try:
            await kernel.scheduler.drain(timeout=grace)
        except Exception:
            log.exception("scheduler drain failed")


def serve(
    config: str | None = None,
    data_bind: str | None = None,
    control_bind: str | None = None,
    state_dir: str | None = None,
) -> int:
    """Load the config, run the daemon until it is told to stop; the exit status."""
    cfg, pm = load_config_and_plugins(config)
    cfg = cfg.with_server(data_bind=data_bind, control_bind=control_bind, state_dir=state_dir)
    setup_daemon_logging(cfg.logging.level, cfg.logging.json)
    trio.run(run, cfg, pm)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kernel.daemon [--config F] [--data-bind A] [--control-bind A] [--state-dir D]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kernel.daemon")
    parser.add_argument("--config")
    parser.add_argument("--data-bind")
    parser.add_argument("--control-bind")
    parser.add_argument("--state-dir")
    args = parser.parse_args(argv)
    return serve(args.config, args.data_bind, args.control_bind, args.state_dir)


if __name__ == "__main__":
    raise SystemExit(main())
