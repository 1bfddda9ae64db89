"""Worker instances: start (sandbox, socketpair, Hello), supervise, stop.

Isolation layers' ``prepare``/``release`` run where the process is started (the
launcher client, given the sandbox built here); their exit cause arrives as
``WorkerProcess.cause``.

:class:`InstanceFactory` is what schedulers get to start instances; each
:class:`Instance` is the kernel's :class:`~kernel.interfaces.InstanceHandle`. The
scheduler owns ``active`` (it counts a request from ``acquire`` to
``Lease.release``); the kernel counts ``served`` and supervises the process.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

from kernel import protocol as p
from kernel.channel import Channel, FetchRefused, enable_passcred
from kernel.errors import StartError
from kernel.interfaces import FunctionVersion, OutboundRequest, SpawnInfo, StartRequest
from kernel.sandbox import Sandbox, contributed

log = logging.getLogger("noslate.instances")
KILL_AFTER = 3.0
"""Seconds between SIGTERM and SIGKILL when stopping an instance."""
LINGER = 2.0
"""Seconds a process may outlive its closed channel before SIGKILL."""

CAUSE_TEXT = {
    "oom": (502, "the function ran out of memory"),
    "cpu-limit": (503, "CPU time limit exceeded"),
    "idle-cpu-limit": (503, "idle CPU limit exceeded"),
    "stopped": (503, "the instance was stopped"),
}


class Instance:
    """One running worker instance (an InstanceHandle)."""

    def __init__(self, kernel: Any, version: FunctionVersion, iid: str, role: str, sandbox: Sandbox) -> None:
        self.kernel = kernel
        self.function_version = version
        self.profile = version.profile
        self.id = iid
        self.function = version.name
        self.version = version.version
        self.role = role
        self.sandbox = sandbox
        self.info = SpawnInfo(self.function, self.version, iid, role)
        self.pid = 0
        self.state = "starting"
        self.active = 0
        self.served = 0
        self.started_at = time.time()
        self.process: Any = None
        self.channel: Channel | None = None
        self.kill_cause: str | None = None
        self.retired: str | None = None
        """Why the instance takes no new requests (``response-timeout``), or None."""
        self.exit_cause: str | None = None
        self.exit_status: int | None = None
        self.exited = trio.Event()
        self._proc_done = trio.Event()
        self._stopping = False
        self._start_scope: trio.CancelScope | None = None
        """The start's wait for Hello, cancelled at once if the instance ends first."""
        self._linger: Any = None
        """The factory's ``linger(inst)``: SIGKILL 2 s after the channel closed."""
        self.start_ms: dict[str, float] = {}
        """Start-path milliseconds: ``prepare`` (sandbox, channel), ``process`` (fork or
        spawn until the starter returned), ``hello`` (until the worker's Hello), plus
        the launcher's ``timings``."""
        self.cpu_marks: dict[int, float] = {}
        """Watchdog bookkeeping: rid -> process CPU ms when first seen in flight."""

    # ---- ChannelHost --------------------------------------------------------------
    def log(self, level: str, message: str, rid: int = 0) -> None:
        self.kernel.log(self.function, level, message, instance=self.id)

    async def call(self, op: str, args: list[Any]) -> Any:
        backend = self.kernel.kv
        if backend is None:
            from kernel.interfaces import KVError

            raise KVError("InvalidStateError", "no KV backend is enabled on this daemon")
        return await backend.call(self.profile.kv_namespace, op, args)

    async def fetch(self, frame: p.Fetch, body: AsyncIterator[bytes] | None) -> Any:
        return await perform_subrequest(self, frame, body)

    # ---- control ------------------------------------------------------------------
    def kill(self, cause: str) -> None:
        """SIGKILL the process now, recording why (``cpu-limit``, ``start-timeout``)."""
        if self.kill_cause is None:
            self.kill_cause = cause
        if self.process is not None and not self._proc_done.is_set():
            with contextlib.suppress(ProcessLookupError):
                self.process.kill(signal.SIGKILL)

    def retire(self, reason: str) -> None:
        """No new requests for this instance; it stops once its in-flight ones end
        (the scheduler replaces it). Without a scheduler that can retire it: SIGKILL."""
        if self.retired is not None or self.state == "stopped":
            return
        self.retired = reason
        scheduler = getattr(self.kernel, "scheduler", None)
        retire = getattr(scheduler, "retire", None)
        if not (callable(retire) and retire(self, reason)):
            self.kill(reason)

    async def stop(self, *, drain_timeout: float) -> None:
        """Close traffic, wait for in-flight requests, Shutdown, SIGTERM, SIGKILL."""
        if self._stopping:
            await self.exited.wait()
            return
        self._stopping = True
        if self.state != "stopped":
            self.state = "draining"
        if (self.channel and self.channel.in_flight) or self.active > 0:
            with trio.move_on_after(drain_timeout):
                while (self.channel and self.channel.in_flight) or self.active > 0:
                    if self.exited.is_set():
                        break
                    await trio.sleep(0.01)
        if self.channel is not None:
            await self.channel.send_quiet(p.Shutdown(0))
        with trio.move_on_after(1.0):
            await self.exited.wait()
        if not self.exited.is_set() and self.process is not None:
            self._signal(signal.SIGTERM)
            with trio.move_on_after(KILL_AFTER):
                await self.exited.wait()
            if not self.exited.is_set():
                self._signal(signal.SIGKILL)
                await self.exited.wait()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill(sig)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "function": self.function,
            "version": self.version,
            "pid": self.pid,
            "state": self.state,
            "role": self.role,
            "active": self.active,
            "in_flight": self.channel.in_flight if self.channel else 0,
            "served": self.served,
            "started_at": self.started_at,
            "sandbox": self.sandbox.to_oci(),
        }

    # ---- supervision ----------------------------------------------------------------
    def watch(self, nursery: trio.Nursery, linger: Any) -> None:
        """Supervise the process: callbacks when the process can report its exit
        (launcher processes: no task per instance), else the :meth:`supervise` task."""
        assert self.channel is not None and self.process is not None
        on_exit = getattr(self.process, "on_exit", None)
        if on_exit is None:
            nursery.start_soon(self.supervise)
            return
        self._linger = linger
        self.channel.on_close = self._channel_closed
        on_exit(self._process_exited)

    def _process_exited(self) -> None:
        self.exit_status = self.process.returncode
        self._proc_done.set()
        if not self.exited.is_set():
            self._finish()

    def _channel_closed(self) -> None:
        """The channel closed before the process exited: 2 s to exit, then SIGKILL
        (one shared reaper task in the factory, not a task per instance)."""
        if not self._proc_done.is_set():
            self._linger(self)

    async def _kill_lingering(self) -> None:
        with trio.move_on_after(LINGER):
            await self._proc_done.wait()
        if not self._proc_done.is_set():
            self._signal(signal.SIGKILL)

    async def _wait_process(self) -> None:
        try:
            self.exit_status = await self.process.wait()
        finally:
            self._proc_done.set()

    async def supervise(self) -> None:
        """Wait for the process to end (or its channel to close), then clean up."""
        assert self.channel is not None and self.process is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_channel)
            await self._wait_process()
            nursery.cancel_scope.cancel()
        self._finish()

    async def _watch_channel(self) -> None:
        """Once the channel closes, give the process 2 s to exit, then SIGKILL it."""
        assert self.channel is not None
        await self.channel.closed.wait()
        await self._kill_lingering()

    def _finish_failed_start(self) -> None:
        self.state = "stopped"
        self.exited.set()

    def _finish(self) -> None:
        # The process starter (the launcher) ran the isolation layers' release();
        # a layer that ended the process says so in ``process.cause`` ("oom").
        cause = getattr(self.process, "cause", None)
        status = self.exit_status
        if cause is None:
            if self.kill_cause:
                cause = self.kill_cause
            elif self._stopping:
                cause = "stopped"
            elif status is not None and status < 0:
                cause = (
                    f"killed by {signal.Signals(-status).name}"
                    if -status in signal.valid_signals()
                    else "killed"
                )
            else:
                cause = f"exit {status}"
        self.exit_cause = cause
        self.state = "stopped"
        code, message = CAUSE_TEXT.get(cause, (502, "the worker instance exited unexpectedly"))
        if self.channel is not None:
            self.channel.fail_all(code, message)
            self.channel.close()
        self.kernel.instance_exited(self, cause)
        self.exited.set()
        if self._start_scope is not None:
            self._start_scope.cancel()


def describe_exit(inst: Instance) -> str:
    if inst.exit_cause == "oom":
        return (
            f"instance {inst.id} of function {inst.function} was killed for memory "
            f"(limit {inst.profile.resource_limit.memory} bytes)"
        )
    if inst.exit_cause == "cpu-limit":
        return (
            f"instance {inst.id} of function {inst.function} was killed: CPU time limit exceeded "
            f"({inst.profile.worker.cpu_time_limit_ms} ms per request)"
        )
    if inst.exit_cause == "idle-cpu-limit":
        return (
            f"instance {inst.id} of function {inst.function} was killed: it burned CPU with no "
            "request in flight ([server] idle_cpu_share)"
        )
    return f"instance {inst.id} of function {inst.function} exited: {inst.exit_cause}"


class InstanceFactory:
    """Starts instances for schedulers (``InstanceFactory`` of ``kernel.interfaces``)."""

    def __init__(self, kernel: Any, nursery: trio.Nursery) -> None:
        self.kernel = kernel
        self.nursery = nursery
        self.live: dict[str, Instance] = {}
        self._seq = itertools.count(1)
        self._lingering: dict[Instance, float] = {}
        self._reaping = False
        self._hello_due: dict[Instance, float] = {}
        self._hello_checking = False

    def linger(self, inst: Instance) -> None:
        """SIGKILL ``inst`` unless its process exits within LINGER seconds."""
        self._lingering.setdefault(inst, trio.current_time() + LINGER)
        if not self._reaping:
            self._reaping = True
            self.nursery.start_soon(self._reap_lingering)

    async def _reap_lingering(self) -> None:
        """One task for every instance whose channel closed before its exit: the exit
        usually follows within milliseconds (the channel's EOF comes first)."""
        try:
            while self._lingering:
                await trio.sleep(0.1)
                now = trio.current_time()
                for inst, deadline in list(self._lingering.items()):
                    if inst._proc_done.is_set():
                        del self._lingering[inst]
                    elif now >= deadline:
                        del self._lingering[inst]
                        inst._signal(signal.SIGKILL)
        finally:
            self._reaping = False

    async def start(self, version: FunctionVersion) -> Instance:
        t0 = time.perf_counter()
        profile = version.profile
        runtime = self.kernel.runtime(profile.runtime)
        if runtime is None:
            raise StartError(f"unknown runtime {profile.runtime!r}", fatal=True)
        hooks = self.kernel.hooks
        starter = None
        if not profile.worker.disable_seed:
            starter = hooks.instance_starter(runtime=runtime, function=profile)
        role = "instance" if starter is not None else "cold"
        iid = f"{profile.name}-{next(self._seq)}"
        sandbox = contributed(
            hooks,
            profile,
            role,
            f"noslate:{profile.name}@{version.version[:19]}#{iid}",
            {
                "noslate.function": profile.name,
                "noslate.version": version.version,
                "noslate.instance": iid,
                "noslate.role": role,
            },
        )
        inst = Instance(self.kernel, version, iid, role, sandbox)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        enable_passcred(ours)
        ours.setblocking(False)
        channel = inst.channel = Channel(trio.socket.from_stdlib_socket(ours), inst, name=iid)
        try:
            request = StartRequest(version, iid, theirs.fileno(), sandbox, role)
            t1 = time.perf_counter()
            proc = await (starter or runtime).start(request)
            t2 = time.perf_counter()
        except BaseException as exc:
            channel.close()
            inst._finish_failed_start()
            if isinstance(exc, StartError):
                raise
            if not isinstance(exc, Exception):
                raise
            raise StartError(f"could not start an instance of {profile.name}: {exc}") from exc
        finally:
            theirs.close()
        inst.process = proc
        inst.pid = proc.pid
        started_as = getattr(getattr(proc, "info", None), "role", role)
        if started_as != role:  # e.g. warmfork started it cold (no seed for this version)
            inst.role = started_as
            inst.info = SpawnInfo(inst.function, inst.version, iid, started_as)
            sandbox.annotations["noslate.role"] = started_as
        self.live[iid] = inst
        self.nursery.start_soon(channel.run)
        inst.watch(self.nursery, self.linger)
        timeout = profile.worker.initialization_timeout / 1000
        serving = getattr(proc, "serving", False) and not inst.exited.is_set()
        if serving and not channel.hello_received.is_set():
            # An adopted spare: requests may go out now (the worker reads them after
            # its Hello); the pid seen through SCM_CREDENTIALS replaces the launcher's.
            def hello() -> None:
                inst.pid = channel.pid or inst.pid
                self._hello_due.pop(inst, None)

            channel.on_hello = hello
            self._expect_hello(inst, timeout)
        elif not (channel.hello_received.is_set() or inst.exited.is_set()):
            with trio.move_on_after(timeout) as scope:
                inst._start_scope = scope  # cancelled by _finish if the instance ends first
                await channel.hello_received.wait()
            inst._start_scope = None
        if not (serving or channel.hello_received.is_set()):
            if inst.exited.is_set():
                msg = f"instance of {profile.name} exited during start-up ({inst.exit_cause})"
            else:
                inst.kill("start-timeout")
                msg = _start_timeout(profile.name, timeout)
            self.kernel.log(profile.name, "error", msg, instance=iid)
            raise StartError(msg)
        inst.pid = channel.pid or proc.pid
        t3 = time.perf_counter()
        inst.start_ms = {
            "prepare": (t1 - t0) * 1000,
            "process": (t2 - t1) * 1000,
            "hello": (t3 - t2) * 1000,
            **getattr(proc, "timings", {}),
        }
        log.debug("started %s: %s", iid, inst.start_ms)
        if inst.state == "starting":
            inst.state = "ready"
        self.kernel.metrics.cold_starts.labels(profile.name, inst.role).inc()
        return inst

    def _expect_hello(self, inst: Instance, timeout: float) -> None:
        """An instance that got requests before its Hello still has to say it within
        ``initializationTimeout``, else it is killed (its requests fail with 5xx). One
        shared task checks every such instance (normally its Hello follows within ms)."""
        self._hello_due[inst] = trio.current_time() + timeout
        if not self._hello_checking:
            self._hello_checking = True
            self.nursery.start_soon(self._check_hellos)

    async def _check_hellos(self) -> None:
        try:
            while self._hello_due:
                await trio.sleep(0.1)
                now = trio.current_time()
                for inst, deadline in list(self._hello_due.items()):
                    if inst.exited.is_set() or (inst.channel and inst.channel.hello_received.is_set()):
                        del self._hello_due[inst]
                    elif now >= deadline:
                        del self._hello_due[inst]
                        inst.kill("start-timeout")
                        timeout = inst.profile.worker.initialization_timeout / 1000
                        message = _start_timeout(inst.function, timeout)
                        self.kernel.log(inst.function, "error", message, instance=inst.id)
        finally:
            self._hello_checking = False


def _start_timeout(function: str, timeout: float) -> str:
    return f"instance of {function} did not start within {timeout:g} s (initializationTimeout)"


# ---- outbound ------------------------------------------------------------------------


async def resolve(host: str) -> tuple[str, ...]:
    """The IP addresses ``host`` resolves to (an IP literal resolves to itself)."""
    import ipaddress

    try:
        return (str(ipaddress.ip_address(host.strip("[]"))),)
    except ValueError:
        pass
    infos = await trio.socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


async def perform_subrequest(inst: Instance, frame: p.Fetch, body: AsyncIterator[bytes] | None) -> Any:
    """Run a worker's ``fetch()``: resolve, check hooks, perform."""
    from urllib.parse import urlsplit

    kernel = inst.kernel
    metrics = kernel.metrics.subrequests
    parts = urlsplit(frame.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        metrics.labels(inst.function, "invalid").inc()
        raise FetchRefused(
            "TypeError", f"fetch: only absolute http(s) URLs are allowed, got {frame.url[:200]!r}"
        )
    try:
        addresses = await resolve(parts.hostname)
    except OSError as exc:
        metrics.labels(inst.function, "dns").inc()
        raise FetchRefused("TypeError", f"fetch: cannot resolve {parts.hostname}") from exc
    assert inst.channel is not None
    number = inst.channel.subrequest_number(frame.rid)
    request = OutboundRequest(
        method=frame.method,
        url=frame.url,
        headers=list(frame.headers),
        function=inst.function,
        instance=inst.id,
        addresses=addresses,
        sequence=number,
        redirect=frame.redirect if frame.redirect in ("follow", "manual", "error") else "follow",
    )
    rejection = kernel.hooks.outbound_check(request=request, function=inst.profile)
    if rejection is not None:
        metrics.labels(inst.function, "refused").inc()
        inst.log("warning", f"fetch {frame.method} {frame.url[:200]} refused: {rejection.message}")
        raise FetchRefused("TypeError", f"fetch refused: {rejection.message}")
    performer = kernel.hooks.outbound_performer(function=inst.profile)
    if performer is None:
        metrics.labels(inst.function, "refused").inc()
        raise FetchRefused("TypeError", "fetch is not available: no outbound plugin is enabled")
    metrics.labels(inst.function, "performed").inc()
    return await performer.perform(request, body)
