"""kernel.plugins: entry-point discovery, enable/disable, duplicates, import failures."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from kernel.config import PluginsConfig
from kernel.errors import PluginError
from kernel.plugins import PluginManager, discover, list_plugins


def make_dist(root: Path, dist: str, name: str, module: str, source: str) -> None:
    info = root / f"{dist.replace('-', '_')}-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[noslate.plugins]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("kcp_")]:
        del sys.modules[mod]


ONLY = ["routing_host"]


def test_discovers_loads_and_lists_hooks(site):
    make_dist(
        site,
        "kcp-one",
        "kcp_one",
        "kcp_one",
        """
        from kernel.hookspecs import hookimpl
        from kernel.interfaces import Route
        @hookimpl
        def noslate_route(request):
            return Route("fixed", request.target)
    """,
    )
    pm = PluginManager()
    pm.load(PluginsConfig(enabled=[*ONLY, "kcp_one"]))
    info = {i.name: i for i in pm.list_plugins()}
    assert info["kcp_one"].distribution == "kcp-one" and info["kcp_one"].version == "1.2"
    assert info["kcp_one"].hooks == ("noslate_route",)
    assert (info["routing_host"].enabled and not info.get("kv_lru")) or not info["kv_lru"].enabled
    from kernel.interfaces import InboundRequest

    req = InboundRequest("GET", "/x", [], "hello.localhost")
    # Both route; the third-party plugin registered last is called first.
    assert pm.hooks.route(request=req).function == "fixed"
    listed = {i.name: i for i in list_plugins(None)}
    assert "kcp_one" in listed and listed["kcp_one"].hooks == ("noslate_route",)


def test_disabled_plugins_are_blocked_and_not_imported(site):
    make_dist(site, "kcp-bad", "kcp_bad", "kcp_bad", "raise RuntimeError('must not be imported')\n")
    pm = PluginManager()
    pm.load(PluginsConfig(enabled=ONLY))
    assert pm.pm.is_blocked("kcp_bad") and "kcp_bad" not in sys.modules
    pm = PluginManager()
    pm.load(PluginsConfig(enabled=[*ONLY, "kcp_bad"], disabled=["kcp_bad"]))
    assert pm.pm.is_blocked("kcp_bad")
    pm = PluginManager()
    pm.load(PluginsConfig(enabled=[*ONLY, "kcp_bad"]), {"kcp_bad": {"enabled": False}})
    assert pm.pm.is_blocked("kcp_bad")


def test_import_failure_stops_with_name_and_error(site):
    make_dist(site, "kcp-bad", "kcp_bad", "kcp_bad", "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError) as info:
        PluginManager().load(PluginsConfig(enabled=[*ONLY, "kcp_bad"]))
    msg = str(info.value)
    assert "'kcp_bad'" in msg and "kcp-bad" in msg and "RuntimeError: boom at import" in msg


def test_duplicate_names_name_both_distributions(site):
    make_dist(site / "a", "kcp-first", "kcp_dup", "kcp_dup_a", "")
    make_dist(site / "b", "kcp-second", "kcp_dup", "kcp_dup_b", "")
    sys.path[:0] = [str(site / "a"), str(site / "b")]
    try:
        with pytest.raises(PluginError) as info:
            discover()
    finally:
        sys.path[:2] = []
    assert "kcp-first" in str(info.value) and "kcp-second" in str(info.value)


def test_unknown_hook_fails_check_pending(site):
    make_dist(
        site,
        "kcp-typo",
        "kcp_typo",
        "kcp_typo",
        """
        from kernel.hookspecs import hookimpl
        @hookimpl
        def noslate_rout(request):
            return None
    """,
    )
    with pytest.raises(PluginError, match="noslate_rout"):
        PluginManager().load(PluginsConfig(enabled=[*ONLY, "kcp_typo"]))


def test_duplicate_runtime_names_rejected(site):
    src = """
        from kernel.hookspecs import hookimpl
        from kernel.interfaces import RuntimeSpec
        @hookimpl
        def noslate_runtimes():
            return [RuntimeSpec("same", lambda k: None)]
    """
    make_dist(site, "kcp-r1", "kcp_r1", "kcp_r1", src)
    make_dist(site / "x", "kcp-r2", "kcp_r2", "kcp_r2", src)
    sys.path.insert(0, str(site / "x"))
    try:
        pm = PluginManager()
        pm.load(PluginsConfig(enabled=["kcp_r1", "kcp_r2"]))
        with pytest.raises(PluginError, match="runtime named 'same'"):
            pm.hooks.runtimes()
    finally:
        sys.path.remove(str(site / "x"))
