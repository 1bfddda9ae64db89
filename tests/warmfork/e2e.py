"""Helpers for the warmfork end-to-end tests: a real daemon with runtime_v8 + warmfork."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]
NO_WARMFORK = [p for p in PLUGINS if p != "warmfork"]
CALM = {"breaker": {"max_load": 1000.0}}
"""The scheduler refuses requests above a load average of 10: other suites share the box."""


def need_runtime_v8() -> None:
    """Skip unless runtime_v8 and its JS bundle are usable (built on demand)."""
    import conftest

    if not conftest.plugin_available("runtime_v8"):
        pytest.skip("plugins/runtime_v8 is not installed")
    from plugins.runtime_v8 import runtime_js

    if runtime_js.stale():
        runtime_js.build()


def start(daemon_factory: Any, *, plugins: list[str] = PLUGINS, **warmfork: Any) -> Any:
    """A daemon with runtime_v8 and warmfork (``warmfork`` = its config section)."""
    need_runtime_v8()
    sections: dict[str, Any] = {"scaler_reactive": CALM}
    if warmfork and "warmfork" in plugins:
        sections["warmfork"] = warmfork
    return daemon_factory(config={"plugins": sections}, plugins=plugins)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def seeds(d: Any, function: str | None = None) -> list[dict[str, Any]]:
    """The running seeds the warmfork plugin reports in ``/v1/status``."""
    resp = d.control("GET", "/v1/status")
    resp.raise_for_status()
    report = resp.json()["capabilities"].get("warmfork") or {}
    out = report.get("seed_processes", [])
    return [s for s in out if function is None or s["function"] == function]


def warmfork_stats(d: Any) -> dict[str, Any]:
    return d.control("GET", "/v1/status").json()["capabilities"]["warmfork"]


def instances(d: Any, function: str) -> list[dict[str, Any]]:
    resp = d.control("GET", "/v1/instances", params={"function": function})
    resp.raise_for_status()
    return [i for i in resp.json()["instances"] if i["function"] == function]


def ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def alive(pid: int) -> bool:
    """Running (not gone and not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (by walking /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                children.setdefault(ppid(int(name)), []).append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
