"""The records hooks return and the objects plugins and the kernel hand each other.

Hooks (``kernel.hookspecs``) are synchronous; the asynchronous work happens on the
objects defined here. Records are small frozen attrs classes; behaviour is described
with ``typing.Protocol`` so a plugin needs no base class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

if TYPE_CHECKING:
    import trio

    from kernel.profile import FunctionProfile
    from kernel.sandbox import Sandbox

Headers = list[tuple[str, str]]


# ---- configuration and services ------------------------------------------------------


@frozen
class ConfigSection:
    """A plugin's ``[plugins.<name>]`` section and the attrs class it becomes."""

    name: str
    cls: type


@frozen
class Service:
    """A background task run in the daemon's nursery until shutdown.

    ``run`` is ``async def run(*, task_status=trio.TASK_STATUS_IGNORED)`` and calls
    ``task_status.started()`` once it is ready.
    """

    name: str
    run: Callable[..., Awaitable[None]]


# ---- inbound -------------------------------------------------------------------------


@frozen
class InboundRequest:
    """What routing and admission hooks see of an HTTP request."""

    method: str
    target: str
    """Path and query exactly as the client sent them (``/a?b=1``)."""
    headers: Headers
    host: str
    """Host header without port, lower-cased."""
    scheme: str = "http"
    client: str = ""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@frozen
class Route:
    """Where a request goes: the function and the path and query its worker sees."""

    function: str
    target: str


@frozen
class Rejection:
    """A refusal: HTTP ``status``, a machine-readable ``reason`` and text for people."""

    status: int
    reason: str
    message: str
    retry_after: float | None = None
    """Seconds; sent as Retry-After (rounded up)."""


class RejectedError(Exception):
    """Raised by schedulers and hooks' objects to refuse a request with a Rejection."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(rejection.message)


# ---- outbound ------------------------------------------------------------------------


@frozen
class OutboundRequest:
    """A worker's subrequest, as the outbound hooks see it."""

    method: str
    url: str
    headers: Headers
    function: str
    instance: str
    addresses: tuple[str, ...] = ()
    """The IP addresses the URL's host resolves to (filled before the check hooks)."""
    sequence: int = 0
    """(added) 1-based number of this subrequest within its inbound request."""
    redirect: str = "follow"
    """The Fetch ``redirect`` mode: ``follow``, ``manual`` (the 3xx response is
    returned as is) or ``error`` (a redirect fails the fetch)."""


@frozen
class OutboundResponse:
    """The result of performing a subrequest; ``body`` streams the response body."""

    status: int
    status_text: str
    headers: Headers
    url: str
    body: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] | None = None


class OutboundPerformer(Protocol):
    """Performs allowed subrequests (``noslate_outbound_performer``)."""

    async def perform(
        self, request: OutboundRequest, body: AsyncIterator[bytes] | None
    ) -> OutboundResponse: ...


# ---- instances and scheduling --------------------------------------------------------


@frozen
class FunctionVersion:
    """One deployed version of a function: profile, code signature and prepared code."""

    profile: FunctionProfile
    version: str
    """The code signature, e.g. ``sha256:…`` (new on every deploy)."""
    artifact: bytes = field(repr=False)
    """The runtime-prepared code (e.g. the bundled script)."""
    deployed_at: float = 0.0

    @property
    def name(self) -> str:
        return self.profile.name


@runtime_checkable
class InstanceHandle(Protocol):
    """A running worker instance, as schedulers see it (implemented by the kernel)."""

    id: str
    function: str
    version: str
    pid: int
    state: str
    """``starting``, ``ready``, ``draining``, ``stopped``."""
    active: int
    """Requests in flight (counted until the response body is fully sent)."""
    started_at: float
    served: int
    """Requests completed so far."""

    async def stop(self, *, drain_timeout: float) -> None:
        """Close traffic, wait for in-flight requests, then SIGTERM, then SIGKILL."""
        ...


class InstanceFactory(Protocol):
    """Starts instances (implemented by the kernel; given to schedulers)."""

    async def start(self, version: FunctionVersion) -> InstanceHandle:
        """Start one instance; raise :class:`kernel.errors.StartError` on failure."""
        ...


class Lease(Protocol):
    """The right to send one request to one instance; release exactly once."""

    instance: InstanceHandle
    # Optional: ``waited`` (seconds the request spent queued) feeds
    # ``noslate_queue_wait_seconds`` when a scheduler's leases have it.

    def release(self, *, failed: bool = False) -> None: ...


class Scheduler(Protocol):
    """Queues, dispatches and scales a daemon's functions (``noslate_schedulers``)."""

    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None:
        """Background work (scaling ticks, reservations) until cancelled."""
        ...

    def deploy(self, version: FunctionVersion) -> None:
        """A function version became current (new or replacing an older one)."""
        ...

    def remove(self, function: str) -> None:
        """A function was deleted: drain and stop its instances."""
        ...

    async def acquire(self, function: str) -> Lease:
        """Wait (bounded) for capacity on an instance of ``function``'s current version.

        Raises :class:`RejectedError` (queue full or disabled, deadline, start failure).
        """
        ...

    def instance_exited(self, instance: InstanceHandle, reason: str) -> None:
        """An instance died (crash, OOM, CPU limit): forget it, replace if needed."""
        ...

    def instances(self) -> Sequence[InstanceHandle]: ...

    def statistics(self) -> dict[str, Any]:
        """Queue depths, instance counts and policy state per function (JSON-able)."""
        ...

    async def drain(self, *, timeout: float) -> None:
        """Stop accepting, let in-flight requests finish, stop every instance."""
        ...


@frozen
class SchedulerContext:
    """What a scheduler factory receives."""

    kernel: Kernel
    factory: InstanceFactory
    dispatch_strategies: dict[str, DispatchStrategy]
    scaling_policies: dict[str, ScalingPolicySpec]


@frozen
class SchedulerSpec:
    """A scheduler registered by name."""

    name: str
    factory: Callable[[SchedulerContext], Scheduler]


@frozen
class DispatchStrategy:
    """Chooses the instance for a request among those with free capacity."""

    name: str
    choose: Callable[[Sequence[InstanceHandle]], InstanceHandle | None]


@frozen
class ScalingPolicySpec:
    """A scaling policy registered by name; ``factory(options)`` returns a policy object."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


# ---- isolation -----------------------------------------------------------------------


@frozen
class SpawnInfo:
    """Identifies a worker process to isolation layers."""

    function: str
    version: str
    instance: str
    role: str
    """``seed``, ``instance`` or ``cold``."""


class IsolationLayer(Protocol):
    """Enforces part of a sandbox (``noslate_isolation_layers``).

    ``prepare`` and ``release`` run in the daemon; ``apply`` runs inside the new
    process (in the launcher's child, single-threaded, before user code);
    ``attach`` runs in the launcher right after a fork, with the child's pid.
    """

    name: str
    phase: str
    """One of :data:`kernel.sandbox.PHASES`."""

    def prepare(self, sandbox: Sandbox, info: SpawnInfo) -> None: ...

    def apply(self, sandbox: Sandbox) -> None: ...

    def attach(self, sandbox: Sandbox, pid: int) -> None: ...

    def release(self, sandbox: Sandbox, info: SpawnInfo) -> str | None:
        """The process ended: clean up; return a cause (``"oom"``) if this layer killed it."""
        ...


# ---- runtimes ------------------------------------------------------------------------


@frozen
class StartRequest:
    """Everything needed to start one worker instance."""

    version: FunctionVersion
    instance: str
    """Instance id (``<function>-<n>``)."""
    channel_fd: int
    """The worker's end of the kernel<->worker socketpair; the starter passes it on."""
    sandbox: Sandbox
    role: str = "cold"


class WorkerProcess(Protocol):
    """A started worker OS process."""

    pid: int

    async def wait(self) -> int:
        """Wait for exit; return the wait status (as ``os.waitstatus_to_exitcode``)."""
        ...

    def kill(self, sig: int) -> None: ...


class Runtime(Protocol):
    """A JavaScript runtime (``noslate_runtimes``)."""

    name: str

    async def prepare(self, code: bytes, filename: str, profile: FunctionProfile) -> bytes:
        """Check and transform code at deploy time (bundle modules, TypeScript).

        Raise :class:`kernel.errors.DeployError` with ``file:line:column``.
        """
        ...

    async def start(self, request: StartRequest) -> WorkerProcess:
        """Start an instance cold (no seed)."""
        ...


class InstanceStarter(Protocol):
    """A faster way to start instances (warmfork), offered per function."""

    async def start(self, request: StartRequest) -> WorkerProcess: ...

    def discard(self, function: str, version: str | None = None) -> None:
        """Forget seeds of ``function`` (all versions, or all but ``version``)."""
        ...


@frozen
class RuntimeSpec:
    """A runtime registered by name; ``factory(kernel)`` returns a :class:`Runtime`."""

    name: str
    factory: Callable[[Kernel], Runtime]
    description: str = ""


# ---- kv ------------------------------------------------------------------------------


class KVError(Exception):
    """A KV/cache operation failed; ``name`` is the JS error name the worker throws."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class KVBackend(Protocol):
    """Serves the ``kv.*`` and ``cache.*`` host calls (see ``kernel.protocol``)."""

    async def call(self, namespace: str, op: str, args: list[Any]) -> Any:
        """Perform ``op`` in ``namespace``; raise :class:`KVError` for user errors."""
        ...

    def inspect(self, namespace: str | None = None, values: bool = False) -> dict[str, Any]:
        """Namespaces, stores, sizes, entry counts, hits and misses (JSON-able)."""
        ...


@frozen
class KVBackendSpec:
    """A KV backend registered by name; ``factory(kernel)`` returns a KVBackend."""

    name: str
    factory: Callable[[Kernel], KVBackend]


@frozen
class RegistryBackendSpec:
    """A shared function registry registered by name; ``factory(kernel)`` returns a
    :class:`SharedRegistry`."""

    name: str
    factory: Callable[[Kernel], SharedRegistry]


class RegistryUnavailable(Exception):
    """The shared registry cannot be reached: deploys and removals are refused (503)."""


@runtime_checkable
class SharedRegistry(Protocol):
    """The source of truth of many daemons' functions (the kernel calls it).

    ``put`` and ``delete`` raise :class:`RegistryUnavailable` when the store is down.
    ``run`` is a service: it tells the kernel of changes made through other daemons
    (``kernel.apply_shared(name)`` for each changed name) until cancelled."""

    name: str

    async def open(self) -> None: ...

    async def put(self, stored: Any) -> None: ...

    async def delete(self, name: str) -> bool: ...

    async def get(self, name: str) -> Any: ...

    async def versions(self) -> dict[str, str]: ...

    async def run(self, *, task_status: Any = ...) -> None: ...

    async def aclose(self) -> None: ...


# ---- the kernel as plugins see it ----------------------------------------------------


class Kernel(Protocol):
    """The running daemon, as hooks and services see it."""

    config: Any
    """The validated :class:`kernel.config.Config`."""
    hooks: Any
    """The :class:`kernel.plugins.Hooks` facade."""
    state_dir: Any
    """``pathlib.Path`` of the state directory."""

    def log(self, function: str, level: str, message: str, instance: str = "") -> None:
        """Append a line to a function's log (``noslate logs``)."""
        ...
