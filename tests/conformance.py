"""One driver for the shared conformance suite (``../shared/conformance``, see its ``about``).

Every runtime's conformance tests read the cases, expand requests and bodies, and match
answers here. ``tests/`` is on ``sys.path`` (pytest puts it there for ``tests/conftest.py``),
so any test module imports it as ``import conformance``:

- over HTTP through a daemon: a module fixture ``yield from
  conformance.running_daemon(tmp, config, plugins)``, then per case
  ``conformance.run_http_case(daemon, name, case)`` after deploying
  ``conformance.CONFORMANCE / case["worker"]`` as ``conformance.function_name(prefix, case)``;
- directly against a worker: ``requests_of``, ``body_file`` and ``CASES``, with a
  matcher for that harness's reply type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
CASES_FILE = CONFORMANCE / "cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"] if CASES_FILE.exists() else []
CASE_IDS = [c["name"] for c in CASES]
USER_AGENT = "noslate-conformance/1"
RUNTIME_PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8"]


def running_daemon(tmp: Path, config: dict[str, Any], plugins: list[str]) -> Iterator[Any]:
    """Body of a module fixture: a started ``conftest.Daemon``, stopped (or SIGKILLed
    when it does not stop within 20 s) after the module."""
    import conftest

    d = conftest.Daemon(tmp, config, plugins, {})
    d.start()
    yield d
    try:
        d.stop(timeout=20)
    except Exception:
        d.kill9()


def requests_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's requests in order, following ``then`` chains."""
    out = []
    for req in case["requests"]:
        while req is not None:
            out.append(req)
            req = req.get("then")
    return out


def body_file(name: str) -> bytes:
    """The generated body a request's ``body_file`` names (only ``seq1m`` exists)."""
    assert name == "seq1m", name
    return bytes(i % 251 for i in range(1048576))


def function_name(prefix: str, case: dict[str, Any]) -> str:
    """A function name for ``case`` that fits the routing label (``prefix`` + at most 50)."""
    return prefix + case["name"].lower().replace("_", "-")[:50]


def check(resp: Any, expect: dict[str, Any], name: str) -> None:
    """Assert an ``httpx.Response`` matches ``expect`` (the matching rules of ``about``)."""
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


def run_http_case(daemon: Any, name: str, case: dict[str, Any]) -> None:
    """Send every request of ``case`` to deployed function ``name`` through ``daemon``
    (``conftest.Daemon``) with ``x-test`` and the user-agent; check each answer and its
    ``within_ms`` bound."""
    for req in requests_of(case):
        body = req.get("body")
        if req.get("body_file") == "seq1m":
            body = body_file("seq1m")
        headers = {"x-test": "t1", "user-agent": USER_AGENT, **req.get("headers", {})}
        t0 = time.monotonic()
        resp = daemon.request(name, req["path"], method=req["method"], body=body, headers=headers)
        elapsed_ms = (time.monotonic() - t0) * 1000
        check(resp, req["expect"], case["name"])
        within = req["expect"].get("within_ms", req.get("within_ms"))
        if within is not None:
            assert elapsed_ms <= within, f"{case['name']}: took {elapsed_ms:.0f} ms (within_ms {within})"
