"""The ``noslate_instance_starter`` hook as the kernel calls it, through pluggy.

The end-to-end tests (test_e2e_seeds.py) prove seeds really serve requests; this one
pins the hook's decision: which functions and runtimes get a seed starter.
"""

from __future__ import annotations

from types import SimpleNamespace

from kernel.plugins import PluginManager
from kernel.profile import parse_profile


def _hooks_with_warmfork():
    manager = PluginManager()
    manager.load(plugins_cfg=SimpleNamespace(enabled=["warmfork"], disabled=[]))
    assert "warmfork" in manager.hooks.plugin_names()
    return manager.hooks


def test_noslate_instance_starter_offers_seeds_only_where_they_can_work():
    import plugins.warmfork.plugin as warmfork

    hooks = _hooks_with_warmfork()
    seeded = SimpleNamespace(name="aworker", seed_entries=("m:load", "m:serve"))
    unseeded = SimpleNamespace(name="other")
    profile = parse_profile({"name": "fn"})
    cold_profile = parse_profile({"name": "fn", "worker": {"disableSeed": True}})

    previous = warmfork._manager.kernel
    warmfork._manager.bind(SimpleNamespace(launcher=object()))
    try:
        starter = hooks.instance_starter(runtime=seeded, function=profile)
        assert starter is not None and hasattr(starter, "start")
        assert hooks.instance_starter(runtime=seeded, function=profile) is starter
        assert hooks.instance_starter(runtime=seeded, function=cold_profile) is None
        assert hooks.instance_starter(runtime=unseeded, function=profile) is None
        warmfork._manager.bind(SimpleNamespace(launcher=None))
        assert hooks.instance_starter(runtime=seeded, function=profile) is None
    finally:
        warmfork._manager.kernel = previous
