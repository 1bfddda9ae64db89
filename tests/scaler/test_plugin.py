"""The plugin's hooks, loaded the way the kernel loads them (entry point + pluggy)."""

from __future__ import annotations

from importlib.metadata import entry_points
from types import SimpleNamespace

import pluggy
import pytest
import trio

from kernel import hookspecs
from kernel.errors import ConfigError
from kernel.interfaces import InboundRequest, SchedulerContext
from plugins.scaler_reactive.config import ScalerConfig

from .helpers import FakeFactory, make_version


def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    (ep,) = [e for e in entry_points(group="noslate.plugins") if e.name == "scaler_reactive"]
    pm.register(ep.load(), name=ep.name)
    pm.check_pending()
    return pm


def context(pm: pluggy.PluginManager, config: object = None, logs: list | None = None) -> SchedulerContext:
    strategies = {s.name: s for group in pm.hook.noslate_dispatch_strategies() for s in group}
    policies = {p.name: p for group in pm.hook.noslate_scaling_policies() for p in group}
    kernel = SimpleNamespace(config=config, log=lambda *a: (logs if logs is not None else []).append(a))
    return SchedulerContext(
        kernel=kernel, factory=FakeFactory(0.1), dispatch_strategies=strategies, scaling_policies=policies
    )


def test_registrations():
    pm = manager()
    assert [s.name for group in pm.hook.noslate_schedulers() for s in group] == ["reactive"]
    names = {s.name for group in pm.hook.noslate_dispatch_strategies() for s in group}
    assert names == {"least-request-count", "round-robin"}
    names = {p.name for group in pm.hook.noslate_scaling_policies() for p in group}
    assert names == {"water-level", "ema", "keepalive"}
    (section,) = pm.hook.noslate_config_section()
    assert (section.name, section.cls) == ("scaler_reactive", ScalerConfig)


async def test_scheduler_from_hook_serves_and_admit_rate_limits(autojump_clock):
    pm = manager()
    cfg = SimpleNamespace(plugin_section=lambda name: ScalerConfig(policy="ema"))
    pm.hook.noslate_configure.call_historic(kwargs={"config": cfg})
    (spec,) = [s for group in pm.hook.noslate_schedulers() for s in group]
    logs: list = []
    scheduler = spec.factory(context(pm, cfg, logs))
    assert scheduler.statistics()["policy"] == "ema"
    rate = {"maxTokenCount": 2, "tokensPerFill": 1, "fillInterval": 60000}
    version = make_version(rateLimit=rate)
    scheduler.deploy(version)
    request = InboundRequest(method="GET", target="/", headers=[], host="fn.localhost")
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        results = []
        for _ in range(4):
            rejections = pm.hook.noslate_admit(request=request, function=version.profile)
            if rejections:
                results.append(rejections[0].status)
            else:
                (await scheduler.acquire("fn")).release()
                results.append(200)
        nursery.cancel_scope.cancel()
    assert results == [200, 200, 429, 429]
    assert any("instance ready" in line[2] for line in logs)
    (services,) = pm.hook.noslate_services(kernel=SimpleNamespace())
    assert [s.name for s in services] == ["scaler_reactive.breaker"]


def test_unknown_policy_is_a_config_error():
    pm = manager()
    cfg = SimpleNamespace(plugin_section=lambda name: ScalerConfig(policy="magic"))
    (spec,) = [s for group in pm.hook.noslate_schedulers() for s in group]
    with pytest.raises(ConfigError) as info:
        spec.factory(context(pm, cfg))
    assert info.value.errors == [
        "scaling policy 'magic' is not registered; choose one of: ema, keepalive, water-level"
        " @ $.plugins.scaler_reactive.policy"
    ]
    cfg = SimpleNamespace(plugin_section=lambda name: ScalerConfig(policy_options={"bogus": 1.0}))
    with pytest.raises(ConfigError, match=r"bogus.*@ \$.plugins.scaler_reactive.policy_options"):
        spec.factory(context(pm, cfg))
