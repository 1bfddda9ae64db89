"""kernel.config: embedded default, exact error lines, plugin sections."""

from __future__ import annotations

import pytest

from kernel.config import build_config, default_text, parse_toml
from kernel.errors import ConfigError, PluginError

ONLY = {"enabled": ["routing_host", "outbound_http"]}


def test_embedded_default_loads():
    data = parse_toml(default_text())
    config, _pm = build_config({**data, "plugins": ONLY}, "<embedded default>")
    assert config.server.data_bind == "127.0.0.1:8080"
    assert config.server.control_bind == "127.0.0.1:8081"
    assert config.scheduling.scheduler == "reactive" and config.kv.backend == "lru"
    assert data["plugins"] == {"enabled": [], "disabled": []}


def test_all_problems_reported_at_once_with_paths():
    data = {
        "server": {"grace_period": "soon", "bogus": 1},
        "logging": {"level": 3},
        "kv": [],
        "plugins": {**ONLY, "outbound_http": {"max_subrequests": "many", "nope": True}, "ghost": {}},
    }
    with pytest.raises(ConfigError) as info:
        build_config(data)
    errors = info.value.errors
    assert errors[:4] == [
        "expected a table, got list @ $.kv",
        "expected float, got str @ $.server.grace_period",
        "unknown field(s): bogus @ $.server",
        "expected str, got int @ $.logging.level",
    ]
    assert errors[4:6] == [
        "expected int, got str @ $.plugins.outbound_http.max_subrequests",
        "unknown field(s): nope @ $.plugins.outbound_http",
    ]
    assert errors[6].startswith("unknown plugin section; installed plugins: ")
    assert errors[6].endswith(" @ $.plugins.ghost") and "outbound_http" in errors[6]
    assert len(errors) == 7
    assert "invalid configuration:" in str(info.value)


def test_validator_messages_and_syntax_errors():
    with pytest.raises(ConfigError) as info:
        build_config({"server": {"data_bind": "nowhere"}, "logging": {"level": "loud"}, "plugins": ONLY})
    assert info.value.errors == [
        "data_bind must be HOST:PORT (port 0 picks a free one) or unix:PATH; got 'nowhere' @ $.server",
        "level must be one of debug, info, warning, error; got 'loud' @ $.logging",
    ] or info.value.errors[0].endswith("@ $.server")
    with pytest.raises(ConfigError) as info:
        parse_toml("[server\nx=1")
    assert info.value.errors[0].startswith("TOML syntax error:") and info.value.errors[0].endswith("@ $")


def test_plugin_sections_structured_and_disabled():
    config, pm = build_config({"plugins": {**ONLY, "outbound_http": {"max_subrequests": 3}}})
    assert config.plugin_section("outbound_http").max_subrequests == 3
    names = {i.name: i.enabled for i in pm.list_plugins()}
    assert names["outbound_http"] and names["routing_host"] and not names.get("kv_lru", False)
    # enabled = false in the plugin's own section turns it off (and it is not imported).
    config, pm = build_config({"plugins": {**ONLY, "outbound_http": {"enabled": False, "whatever": 1}}})
    assert config.plugin_section("outbound_http") is None
    assert not pm.infos["outbound_http"].enabled
    assert pm.pm.is_blocked("outbound_http")


def test_unknown_enabled_plugin_is_an_error():
    with pytest.raises(PluginError, match="unknown plugin"):
        build_config({"plugins": {"enabled": ["routing_host", "does_not_exist"]}})


def test_with_server_overrides():
    base, _pm = build_config({"plugins": ONLY})
    config = base.with_server(data_bind="127.0.0.1:0", state_dir="/tmp/x", control_bind=None)
    assert config.server.data_bind == "127.0.0.1:0" and config.server.control_bind == "127.0.0.1:8081"
    with pytest.raises(ConfigError):
        base.with_server(data_bind="bad")
