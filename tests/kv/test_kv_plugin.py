"""Inspection, the plugin's hooks and entry point, config, and the expiry sweeper."""

from __future__ import annotations

import base64
from importlib.metadata import entry_points

import attrs
import pluggy
import pytest
import trio

from kernel import hookspecs
from kernel.interfaces import KVBackendSpec
from plugins.kv_lru.backend import LRUBackend
from plugins.kv_lru.config import KVLRUConfig

from .helpers import FakeClock, backend, call


def test_inspect_reports_sizes_counts_hits_misses_without_values():
    clock = FakeClock()
    b = backend(clock)
    call(b, "app", "kv.open", "s", {})
    call(b, "app", "kv.set", "s", "k", b"val", None)
    call(b, "app", "kv.set", "s", "bin", b"\xff\x00", 2000)
    call(b, "app", "kv.get", "s", "k")
    call(b, "app", "kv.get", "s", "nope")
    call(b, "app", "cache.put", "default", "http://x.test/", [], 200, [], b"body")
    call(b, "other", "kv.open", "t", {})
    view = b.inspect()
    assert sorted(view["namespaces"]) == ["app", "other"]
    app = view["namespaces"]["app"]
    assert app["kv"]["bytes"] == 4 + 5 and app["kv"]["entries"] == 2
    assert app["kv"]["quota_bytes"] == 256 * 1024 * 1024
    store = app["kv"]["stores"]["s"]
    assert store == {
        "entries": 2,
        "bytes": 9,
        "hits": 1,
        "misses": 1,
        "evictions": 0,
        "expirations": 0,
    }
    assert app["cache"]["caches"]["default"]["bytes"] == len("http://x.test/") + 4
    assert "values" not in store
    assert b.inspect("other")["namespaces"].keys() == {"other"}
    assert b.inspect("missing")["namespaces"] == {}


def test_inspect_values_only_when_asked():
    clock = FakeClock()
    b = backend(clock)
    call(b, "app", "kv.open", "s", {})
    call(b, "app", "kv.set", "s", "k", b"val", None)
    call(b, "app", "kv.set", "s", "bin", b"\xff\x00", 2000)
    call(b, "app", "cache.put", "default", "http://x.test/", [], 200, [["a", "b"]], b"body")
    clock.advance(0.5)
    values = b.inspect("app", values=True)["namespaces"]["app"]["kv"]["stores"]["s"]["values"]
    assert values["k"] == {"size": 4, "ttl_ms": None, "encoding": "utf-8", "value": "val"}
    assert values["bin"]["encoding"] == "base64"
    assert base64.b64decode(values["bin"]["value"]) == b"\xff\x00"
    assert values["bin"]["ttl_ms"] == 1500
    cached = b.inspect("app", values=True)["namespaces"]["app"]["cache"]["caches"]["default"]["values"]
    assert cached["http://x.test/"]["status"] == 200
    assert cached["http://x.test/"]["body"] == {"encoding": "utf-8", "value": "body"}


def test_hooks_register_the_lru_backend_with_its_config():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    (ep,) = [e for e in entry_points(group="noslate.plugins") if e.name == "kv_lru"]
    pm.register(ep.load(), name="kv_lru")
    pm.check_pending()
    (section,) = [s for s in pm.hook.noslate_config_section() if s.name == "kv_lru"]
    assert section.cls is KVLRUConfig
    specs = [s for specs in pm.hook.noslate_kv_backends() for s in specs]
    assert [s.name for s in specs] == ["lru"]
    assert isinstance(specs[0], KVBackendSpec)

    class Config:
        def plugin_section(self, name):
            assert name == "kv_lru"
            return KVLRUConfig(max_stores=3)

    class Kernel:
        config = Config()
        kv = None

    kernel = Kernel()
    kv = specs[0].factory(kernel)
    assert isinstance(kv, LRUBackend) and kv.config.max_stores == 3
    assert pm.hook.noslate_services(kernel=kernel) == []
    kernel.kv = kv
    (services,) = pm.hook.noslate_services(kernel=kernel)
    assert [s.name for s in services] == ["kv_lru.sweeper"]


def test_config_is_frozen_and_validated():
    with pytest.raises(ValueError, match="quota_bytes"):
        KVLRUConfig(quota_bytes=0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        KVLRUConfig().max_stores = 9  # type: ignore[misc]


async def test_sweeper_releases_expired_bytes(autojump_clock):
    b = LRUBackend(KVLRUConfig(sweep_interval_s=1.0), clock=trio.current_time)
    call(b, "ns", "kv.open", "s", {})
    call(b, "ns", "kv.set", "s", "k", b"v", 1500)
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run_sweeper)
        await trio.sleep(1.2)
        assert b.space("kv", "ns").bytes == 2
        await trio.sleep(1.0)
        assert b.space("kv", "ns").bytes == 0
        nursery.cancel_scope.cancel()
