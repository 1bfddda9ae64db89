"""Matching rules of the shared conformance cases (see cases.json ``about``)."""

from __future__ import annotations

import json
from typing import Any

RUNTIME_PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8"]


def requests_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's requests in order, following ``then`` chains."""
    out = []
    for req in case["requests"]:
        while req is not None:
            out.append(req)
            req = req.get("then")
    return out


def check(resp: Any, expect: dict[str, Any], name: str) -> None:
    where = f"{name}: {resp.status_code} {resp.text[:300]!r}"
    if "status" in expect:
        assert resp.status_code == expect["status"], where
    if "status_range" in expect:
        lo, hi = expect["status_range"]
        assert lo <= resp.status_code <= hi, where
    for key, value in expect.get("headers", {}).items():
        assert resp.headers.get(key) == value, f"{where}: header {key}={resp.headers.get(key)!r}"
    if "body" in expect and "body_json" not in expect:
        assert resp.text == expect["body"], where
    if "body_json" in expect:
        assert json.loads(resp.text) == expect["body_json"], where
    for bad in expect.get("body_excludes", []):
        assert bad not in resp.text, f"{where}: contains {bad!r}"
