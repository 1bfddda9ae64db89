"""Hook specifications of the noslate kernel.

Every capability of the platform is a plugin that implements some of these hooks.
Hooks are synchronous and cheap (pluggy cannot await): they decide, contribute or
register; asynchronous work lives on the objects they return (see
:mod:`kernel.interfaces`). Always call them with keyword arguments, and only through
:class:`kernel.plugins.Hooks`, the one facade that touches ``pm.hook``.

A plugin may accept fewer arguments than a spec names, so specs can grow.
The reference with examples is ``docs/hooks.md``; a test fails when a hook below is
missing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from kernel.interfaces import (
        ConfigSection,
        DispatchStrategy,
        InboundRequest,
        IsolationLayer,
        Kernel,
        KVBackendSpec,
        OutboundRequest,
        RegistryBackendSpec,
        Rejection,
        Route,
        RuntimeSpec,
        ScalingPolicySpec,
        SchedulerSpec,
        Service,
    )
    from kernel.profile import FunctionProfile
    from kernel.sandbox import Sandbox

PROJECT = "noslate"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------
# Lifecycle
# -------------------------------------------------------------------------------------


@hookspec
def noslate_config_section() -> ConfigSection | None:
    """Declare the plugin's own ``[plugins.<name>]`` config section.

    :returns: a :class:`~kernel.interfaces.ConfigSection` naming the section and the
        frozen attrs class it is structured into (unknown keys are errors), or None
        when the plugin takes no configuration.

    .. versionadded:: 0.1
    """


@hookspec(historic=True)
def noslate_configure(config: Any) -> None:
    """Receive the validated configuration once, before start-up.

    :param config: the :class:`kernel.config.Config`; a plugin finds its own section
        with ``config.plugin_section("<name>")``.
    :returns: nothing. Raise :class:`kernel.errors.ConfigError` to reject the config.

    Historic: a plugin registered later still receives the call.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_startup(kernel: Kernel) -> None:
    """The kernel's services exist and the daemon is about to accept traffic.

    :param kernel: the running :class:`~kernel.interfaces.Kernel`.
    :returns: nothing. Raise :class:`kernel.errors.StartupError` to stop start-up
        with a message (e.g. an isolation plugin that is required but unusable).

    .. versionadded:: 0.1
    """


@hookspec
def noslate_services(kernel: Kernel) -> list[Service] | None:
    """Contribute long-running background services (trio tasks).

    :param kernel: the running kernel.
    :returns: a list of :class:`~kernel.interfaces.Service`; each is started in the
        daemon's nursery and cancelled at shutdown.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_shutdown(kernel: Kernel) -> None:
    """The daemon has drained and is stopping: release host resources.

    :param kernel: the kernel.
    :returns: nothing. Must not raise; errors are logged.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_capability_report() -> dict[str, Any] | None:
    """Describe what this plugin found on the host (shown at start-up and in status).

    :returns: a JSON-able mapping, e.g. ``{"cgroup": "v1", "controllers": [...]}``.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# Inbound
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def noslate_route(request: InboundRequest) -> Route | None:
    """Choose the function that serves an inbound HTTP request.

    :param request: method, path, query and headers of the request.
    :returns: a :class:`~kernel.interfaces.Route` (function name and the path the
        worker sees), or None to let the next plugin decide.

    Stops at the first non-None result. The built-in ``routing_host`` plugin routes by
    the first DNS label of the Host header.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_admit(request: InboundRequest, function: FunctionProfile) -> Rejection | None:
    """Admit or reject a routed request before it is queued (rate limits, breakers).

    :param request: the inbound request.
    :param function: the profile of the function it was routed to.
    :returns: a :class:`~kernel.interfaces.Rejection` (HTTP status, reason,
        Retry-After) to reject, or None to admit. The first rejection wins.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# Outbound (a worker's fetch())
# -------------------------------------------------------------------------------------


@hookspec
def noslate_outbound_check(request: OutboundRequest, function: FunctionProfile) -> Rejection | None:
    """Allow or refuse a worker's subrequest before it is performed.

    :param request: method, URL, headers and resolved addresses of the subrequest.
    :param function: the calling function's profile.
    :returns: a Rejection (the worker's ``fetch()`` rejects with a TypeError naming
        the reason) or None to allow. The first rejection wins.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def noslate_outbound_performer(function: FunctionProfile) -> Any | None:
    """Provide the object that performs allowed subrequests.

    :param function: the calling function's profile.
    :returns: an :class:`~kernel.interfaces.OutboundPerformer` or None.

    Stops at the first non-None result.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# Scheduling
# -------------------------------------------------------------------------------------


@hookspec
def noslate_schedulers() -> list[SchedulerSpec] | None:
    """Register schedulers (queueing, dispatch and scaling of a function's instances).

    :returns: :class:`~kernel.interfaces.SchedulerSpec` records; the config key
        ``[scheduling] scheduler`` picks one by name.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_dispatch_strategies() -> list[DispatchStrategy] | None:
    """Register dispatch strategies (which ready instance gets a request).

    :returns: :class:`~kernel.interfaces.DispatchStrategy` records, chosen per
        function by the profile's ``worker.dispatchMode``.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_scaling_policies() -> list[ScalingPolicySpec] | None:
    """Register scaling policies (how many instances a function should have).

    :returns: :class:`~kernel.interfaces.ScalingPolicySpec` records, chosen by name in
        the scheduler's config.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# Isolation
# -------------------------------------------------------------------------------------


@hookspec
def noslate_sandbox_contribute(sandbox: Sandbox, function: FunctionProfile, role: str) -> None:
    """Add this plugin's part to the sandbox description of one worker process.

    :param sandbox: the OCI-runtime-spec-shaped :class:`~kernel.sandbox.Sandbox`,
        mutated in place (user, root, mounts, namespaces, resources, seccomp).
    :param function: the profile of the function the process serves.
    :param role: ``"seed"``, ``"instance"`` or ``"cold"`` (an instance started
        without a seed).
    :returns: nothing.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_isolation_layers() -> list[IsolationLayer] | None:
    """Provide the layers that enforce sandboxes.

    :returns: :class:`~kernel.interfaces.IsolationLayer` objects. Their ``phase``
        fixes the order the launcher applies them in a new process: cgroup ->
        namespaces -> rlimits -> capabilities -> setuid -> no_new_privs ->
        pdeathsig -> seccomp -> user code.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# Runtime
# -------------------------------------------------------------------------------------


@hookspec
def noslate_runtimes() -> list[RuntimeSpec] | None:
    """Register JavaScript runtimes by the name a profile's ``runtime`` field uses.

    :returns: :class:`~kernel.interfaces.RuntimeSpec` records (``aworker``,
        ``nodejs``, ...). Duplicate names are rejected naming both plugins.

    .. versionadded:: 0.1
    """


@hookspec
def noslate_launcher_preload() -> list[str] | None:
    """Name modules the launcher (zygote) imports before it forks anything.

    :returns: importable module names; importing them must not run user code.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# KV storage
# -------------------------------------------------------------------------------------


@hookspec
def noslate_kv_backends() -> list[KVBackendSpec] | None:
    """Register KV and cache storage backends by name.

    :returns: :class:`~kernel.interfaces.KVBackendSpec` records; ``[kv] backend``
        picks one.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------------------
# Function registry
# -------------------------------------------------------------------------------------


@hookspec
def noslate_registry_backends() -> list[RegistryBackendSpec] | None:
    """Register shared function registries by name (``[registry] backend`` picks one).

    The embedded SQLite registry (``"sqlite"``) is the kernel's own and needs no plugin.
    A shared backend (e.g. ``"postgres"``) is the source of truth many daemons deploy
    through; each daemon keeps its SQLite registry as the local cache it serves from.

    :returns: :class:`~kernel.interfaces.RegistryBackendSpec` records.

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def noslate_instance_starter(runtime: Any, function: FunctionProfile) -> Any | None:
    """Offer a faster way than a cold start to start instances of ``function``.

    :param runtime: the :class:`~kernel.interfaces.Runtime` the profile names.
    :param function: the function's profile (``worker.disableSeed`` asks for cold).
    :returns: an :class:`~kernel.interfaces.InstanceStarter` (the warmfork plugin's
        seed manager), or None to start cold through ``runtime.start``.

    Stops at the first non-None result.

    .. versionadded:: 0.1
    """
