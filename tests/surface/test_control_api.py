"""The control API against a real daemon: tokens, probes and exact JSON errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .helpers import MINIMAL_PLUGINS, Daemon, start_daemon, write_config


def test_probes_need_no_token(control_daemon: Daemon) -> None:
    with control_daemon.api(token="") as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        assert api.get("/readyz").json() == {"status": "ready"}


def test_token_is_required(control_daemon: Daemon) -> None:
    with control_daemon.api(token="") as api:
        for path in ("/v1/functions", "/v1/instances", "/v1/status", "/v1/plugins", "/metrics"):
            resp = api.get(path)
            assert resp.status_code == 401, path
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert resp.json()["error"].startswith("missing bearer token")
        resp = api.put("/v1/functions/hello", json={"code": "x"})
        assert resp.status_code == 401
    with control_daemon.api(token="wrong") as api:
        resp = api.get("/v1/functions")
        assert resp.status_code == 401
        assert resp.json()["error"].startswith("wrong bearer token: ") and resp.json()["errors"] == []
    with control_daemon.api() as api:
        assert api.get("/v1/functions").json() == {"functions": []}


def test_malformed_json(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        resp = api.put("/v1/functions/hello", content=b'{"code": "x"')
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"].startswith("malformed JSON body: ")
    assert len(body["errors"]) == 1 and body["errors"][0].endswith(" @ $")


def test_body_shape_errors_name_every_field(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        resp = api.put("/v1/functions/hello", json={"code": 5, "colour": "red", "env": {"A": 1}})
        assert resp.status_code == 400
        assert resp.json() == {
            "error": "invalid deploy request",
            "errors": [
                "unknown field(s): colour @ $",
                "expected string, got int @ $.code",
                "expected string, got int @ $.env.A",
            ],
        }
        resp = api.put("/v1/functions/hello", json=[1])
        assert resp.status_code == 400
        assert resp.json()["errors"] == ["expected object, got list @ $"]


def test_bad_function_name(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        resp = api.put("/v1/functions/Not_A_Label", json={"code": "x"})
    assert resp.status_code == 400
    assert resp.json()["errors"] == [
        "name must be a DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'; "
        "got 'Not_A_Label' @ $.name"
    ]


def test_unknown_function_404(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        for method, path in (
            ("GET", "/v1/functions/nope"),
            ("DELETE", "/v1/functions/nope"),
            ("GET", "/v1/functions/nope/logs"),
        ):
            resp = api.request(method, path)
            assert resp.status_code == 404, (method, path)
            assert resp.json() == {
                "error": "unknown function 'nope'",
                "errors": ["no function named 'nope' @ $.name"],
            }
        resp = api.get("/v1/nothing-here")
        assert resp.status_code == 404 and resp.json()["error"] == "no such route: GET /v1/nothing-here"
        resp = api.post("/v1/functions")
        assert resp.status_code == 405


def test_profile_errors_are_rooted_at_profile(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        resp = api.put(
            "/v1/functions/hello",
            json={"code": "x", "profile": {"colour": 1, "worker": {"replicaCountLimit": "ten"}}},
        )
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "invalid function profile"
    assert "unknown field(s): colour @ $.profile" in body["errors"]


def test_unknown_runtime_422(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        resp = api.put("/v1/functions/hello", json={"code": "x", "profile": {"runtime": "deno"}})
        assert resp.status_code == 422
        errors = resp.json()["errors"]
        assert len(errors) == 1
        assert errors[0].startswith("unknown runtime 'deno'")
        assert errors[0].endswith(" @ $.profile.runtime")
        # nothing was stored
        assert api.get("/v1/functions").json() == {"functions": []}


def test_code_over_limit_413(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path, token="t", server={"max_code_size": 1000})
    try:
        with daemon.api() as api:
            resp = api.put("/v1/functions/big", json={"code": "x" * 1001})
            assert resp.status_code == 413
            assert resp.json() == {
                "error": "code is 1001 bytes; the limit is 1000 ([server] max_code_size)",
                "errors": ["code is 1001 bytes, over the limit of 1000 @ $.code"],
            }
            assert api.get("/v1/functions/big").status_code == 404
    finally:
        assert daemon.stop() == 0


def test_status_plugins_metrics(control_daemon: Daemon) -> None:
    with control_daemon.api() as api:
        status = api.get("/v1/status").json()
        assert status["status"] == "running"
        assert status["uptime"] >= 0 and status["functions"] == 0
        assert status["control"] == control_daemon.control
        assert set(status["plugins"]) == {"routing_host", "scaler_reactive", "kv_lru"}
        assert isinstance(status["capabilities"], dict) and isinstance(status["scheduler"], dict)
        plugins = {p["name"]: p for p in api.get("/v1/plugins").json()["plugins"]}
        assert plugins["routing_host"]["enabled"] is True
        assert "noslate_route" in plugins["routing_host"]["hooks"]
        metrics = api.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "noslate_request_duration_seconds" in metrics.text
        kv = api.get("/v1/kv")
        assert kv.status_code == 200 and isinstance(kv.json(), dict)


def test_logs_follow_streams_json_lines(control_daemon: Daemon) -> None:
    # logs of an unknown function are a 404 even when following
    with control_daemon.api() as api, api.stream("GET", "/v1/functions/ghost/logs?follow=1") as resp:
        assert resp.status_code == 404
        resp.read()
        assert json.loads(resp.text)["error"] == "unknown function 'ghost'"


async def test_readyz_fails_while_draining(tmp_path: Path) -> None:
    """In-process daemon: flip ``kernel.draining`` as SIGTERM does, probe over HTTP."""
    import trio

    from kernel.config import load_config_and_plugins
    from kernel.daemon import run

    config = write_config(
        tmp_path / "c.toml",
        {
            "server": {"data_bind": "127.0.0.1:0", "control_bind": "127.0.0.1:0", "state_dir": str(tmp_path)},
            "plugins": {"enabled": MINIMAL_PLUGINS},
        },
    )
    cfg, pm = load_config_and_plugins(config)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            kernel = await nursery.start(run, cfg, pm)
            async with httpx.AsyncClient(base_url=f"http://{kernel.control_address}") as api:
                assert (await api.get("/readyz")).status_code == 200
                kernel.draining = True
                resp = await api.get("/readyz")
                assert resp.status_code == 503
                assert resp.json() == {"error": "draining: the daemon is shutting down", "errors": []}
                assert (await api.get("/healthz")).status_code == 200
            nursery.cancel_scope.cancel()
