"""Hook implementations of the scaler_reactive plugin."""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import (
    ConfigSection,
    DispatchStrategy,
    InboundRequest,
    Kernel,
    Rejection,
    ScalingPolicySpec,
    SchedulerContext,
    SchedulerSpec,
    Service,
)
from plugins.scaler_reactive import dispatch, policies
from plugins.scaler_reactive.admission import Admission
from plugins.scaler_reactive.config import ScalerConfig, section
from plugins.scaler_reactive.scheduler import ReactiveScheduler

_state: dict[str, Any] = {"config": ScalerConfig(), "admission": None}


def _admission() -> Admission:
    if _state["admission"] is None:
        _state["admission"] = Admission(_state["config"].breaker)
    return _state["admission"]


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection(name="scaler_reactive", cls=ScalerConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    _state["config"] = section(config)
    _state["admission"] = Admission(_state["config"].breaker)


def _make_scheduler(ctx: SchedulerContext) -> ReactiveScheduler:
    kernel = ctx.kernel
    config = section(getattr(kernel, "config", None))
    scheduler = ReactiveScheduler(
        ctx.factory,
        ctx.dispatch_strategies,
        ctx.scaling_policies,
        config,
        log=getattr(kernel, "log", None),
    )
    _admission().breaker.gauge = scheduler.load
    return scheduler


@hookimpl
def noslate_schedulers() -> list[SchedulerSpec]:
    return [SchedulerSpec(name="reactive", factory=_make_scheduler)]


@hookimpl
def noslate_dispatch_strategies() -> list[DispatchStrategy]:
    return dispatch.strategies()


@hookimpl
def noslate_scaling_policies() -> list[ScalingPolicySpec]:
    return policies.policies()


@hookimpl
def noslate_admit(request: InboundRequest, function: Any) -> Rejection | None:
    return _admission().admit(function)


@hookimpl
def noslate_services(kernel: Kernel) -> list[Service]:
    admission = _admission()
    if not admission.breaker.config.enabled:
        return []
    return [Service(name="scaler_reactive.breaker", run=admission.breaker.run)]
