"""The worked third-party plugin (docs/examples/noslate-plugin-example) as users get it.

It is a separate distribution, ``noslate-require-header``, installed into the venv by
``make setup``. Its hooks: ``noslate_admit`` (the refusal), ``noslate_config_section``
and ``noslate_configure`` (its ``[plugins.require_header]`` section).
"""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path
from typing import Any

import pytest

from kernel.plugins import discover

from .helpers import run_cli, write_config

PLUGINS = ["routing_host", "scaler_reactive", "test_runtime", "require_header"]
HANDLER = 'def handle(req, body, host):\n    return 200, [], [b"admitted"]\n'


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    try:
        md.distribution("noslate-require-header")
    except md.PackageNotFoundError:
        pytest.fail(
            "noslate-require-header is not installed: run `make setup` "
            "(pip install -e docs/examples/noslate-plugin-example)"
        )


def test_discovered_through_the_entry_point() -> None:
    found = {name: (ep, dist, version) for name, ep, dist, version in discover()}
    ep, dist, version = found["require_header"]
    assert ep.group == "noslate.plugins"
    assert ep.value == "noslate_require_header.plugin"
    assert dist == "noslate-require-header" and version == "0.1.0"


def test_listed_by_noslate_plugins() -> None:
    r = run_cli("plugins", "--json")
    assert r.returncode == 0, r.stderr
    plugin = next(p for p in json.loads(r.stdout) if p["name"] == "require_header")
    assert plugin["enabled"] is True
    assert plugin["distribution"] == "noslate-require-header"
    assert plugin["hooks"] == ["noslate_admit", "noslate_config_section", "noslate_configure"]


def test_disabled_in_toml_is_listed_disabled(tmp_path: Path) -> None:
    for name, sections in (
        ("list", {"plugins": {"disabled": ["require_header"]}}),
        ("section", {"plugins.require_header": {"enabled": False}}),
    ):
        config = write_config(tmp_path / f"{name}.toml", sections)
        r = run_cli("plugins", "--json", "--config", str(config))
        plugin = next(p for p in json.loads(r.stdout) if p["name"] == "require_header")
        assert plugin["enabled"] is False, name
        assert plugin["hooks"] == []


def test_its_config_section_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[plugins]\nenabled = ["require_header"]\n[plugins.require_header]\nheader = "x-k"\nbogus = 1\n'
    )
    r = run_cli("config", "validate", str(config))
    assert r.returncode == 2
    assert "  unknown field(s): bogus @ $.plugins.require_header" in r.stderr.splitlines()
    config.write_text('[plugins]\nenabled = ["require_header"]\n[plugins.require_header]\nstatus = 500\n')
    r = run_cli("config", "validate", str(config))
    assert r.returncode == 2
    # attrs validators run in __init__, so cattrs reports them at the section's path
    detail = r.stderr.splitlines()[1].strip()
    assert detail.startswith("status must be 401 or 403; got 500 @ $.plugins.require_header")


def _serve(daemon_factory: Any, section: dict[str, Any]) -> Any:
    daemon = daemon_factory(config={"plugins": {"require_header": section}}, plugins=PLUGINS)
    daemon.deploy("guarded", HANDLER, profile={"runtime": "pytest"})
    return daemon


def test_noslate_admit_refuses_in_a_real_daemon(daemon_factory: Any) -> None:
    daemon = _serve(daemon_factory, {"header": "x-api-key", "values": ["k1"], "status": 403})
    resp = daemon.request("guarded", "/")
    assert resp.status_code == 403
    assert resp.json() == {
        "error": "this function requires the x-api-key header",
        "reason": "missing_header",
        "function": "guarded",
    }
    resp = daemon.request("guarded", "/", headers={"x-api-key": "k2"})
    assert resp.status_code == 403 and resp.json()["reason"] == "bad_header"
    resp = daemon.request("guarded", "/", headers={"X-Api-Key": "k1"})
    assert resp.status_code == 200 and resp.text == "admitted"
    plugins = {p["name"]: p for p in daemon.control("GET", "/v1/plugins").json()["plugins"]}
    assert plugins["require_header"]["enabled"] is True
    metrics = daemon.control("GET", "/metrics").text
    assert 'noslate_rejections_total{function="guarded",reason="missing_header"} 1.0' in metrics


def test_disabled_in_toml_lets_requests_through(daemon_factory: Any) -> None:
    daemon = _serve(daemon_factory, {"enabled": False, "header": "x-api-key"})
    resp = daemon.request("guarded", "/")
    assert resp.status_code == 200 and resp.text == "admitted"
    plugins = {p["name"]: p for p in daemon.control("GET", "/v1/plugins").json()["plugins"]}
    assert plugins["require_header"]["enabled"] is False
