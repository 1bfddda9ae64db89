"""Read the running kernel into JSON-able documents for the control API.

Kept apart from :mod:`kernel.control` (HTTP plumbing) so the shapes are in one place;
``docs/openapi.json`` describes them.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Any

from kernel import cli_local


def _get(obj: Any, *names: str) -> Any:
    """The first attribute of ``obj`` that exists (None when none do)."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def max_code_bytes(kernel: Any) -> int | None:
    registry = getattr(kernel, "registry", None)
    limit = getattr(registry, "max_code_size", None)
    if limit is None:
        server = getattr(getattr(kernel, "config", None), "server", None)
        limit = getattr(server, "max_code_size", None)
    return int(limit) if limit else None


def describe_stored(stored: Any) -> dict[str, Any]:
    data = stored.summary()
    data["history"] = []
    return data


def describe_version(result: Any) -> dict[str, Any]:
    """The deploy result (a StoredFunction or a FunctionVersion) as JSON data."""
    if hasattr(result, "summary"):
        return result.summary()
    return {
        "name": result.name,
        "version": result.version,
        "runtime": result.profile.runtime,
        "deployed_at": result.deployed_at,
        "profile": result.profile.to_json(),
    }


def list_functions(kernel: Any) -> list[dict[str, Any]]:
    return [stored.summary() for stored in kernel.registry.all()]


def get_function(kernel: Any, name: str) -> dict[str, Any] | None:
    stored = kernel.registry.get(name)
    if stored is None:
        return None
    data = stored.summary()
    history = getattr(kernel.registry, "history", None)
    if history is not None:
        data["history"] = history(name)
    return data


def _instances(kernel: Any) -> list[Any]:
    scheduler = getattr(kernel, "scheduler", None)
    if scheduler is None:
        return []
    return list(scheduler.instances())


def describe_instance(inst: Any) -> dict[str, Any]:
    """A scheduler's instance (which may wrap the kernel's as ``handle``) as JSON data."""
    inner = getattr(inst, "handle", None) or inst
    sandbox = _get(inst, "sandbox") or _get(inner, "sandbox")
    data = {
        "id": inst.id,
        "function": inst.function,
        "version": inst.version,
        "pid": inst.pid,
        "state": inst.state,
        "active": inst.active,
        "served": getattr(inst, "served", 0),
        "started_at": inst.started_at,
        "role": _get(inst, "role") or _get(inner, "role") or "",
        "sandbox": sandbox.to_oci() if hasattr(sandbox, "to_oci") else sandbox,
    }
    extra = getattr(inst, "describe", None)
    if callable(extra):
        data.update({k: v for k, v in extra().items() if k not in data})
    return data


def instance_usage(kernel: Any, inst: Any) -> dict[str, Any]:
    """(added by isolation-integration) Resource usage of an instance from the isolation
    layers that measure it (``layer.usage(info)``, e.g. isolation_cgroup's memory/CPU)."""
    inner = getattr(inst, "handle", None) or inst
    info = getattr(inner, "info", None)
    out: dict[str, Any] = {}
    if info is None or getattr(inner, "state", "") == "stopped":
        return out
    for layer in getattr(kernel, "layers", None) or []:
        usage = getattr(layer, "usage", None)
        if callable(usage):
            try:
                out.update(usage(info) or {})
            except Exception:  # a cgroup just removed: no usage, never an error
                continue
    return out


def list_instances(kernel: Any, function: str | None) -> list[dict[str, Any]]:
    out = [{**describe_instance(i), "usage": instance_usage(kernel, i)} for i in _instances(kernel)]
    if function:
        out = [i for i in out if i["function"] == function]
    return sorted(out, key=lambda i: (i["function"], i["started_at"] or 0, i["id"]))


def _line(line: Any) -> dict[str, Any]:
    return line.to_json() if hasattr(line, "to_json") else dict(line)


def recent_logs(kernel: Any, name: str, limit: int) -> list[dict[str, Any]]:
    return [_line(line) for line in kernel.logs.recent(name, limit or None)]


async def follow_logs(kernel: Any, name: str) -> AsyncIterator[dict[str, Any]]:
    """New lines of ``name`` until the client goes away or the daemon stops."""
    receive = kernel.logs.follow(name)
    async with receive:
        async for line in receive:
            yield _line(line)


def metrics_registry(kernel: Any) -> Any:
    metrics = kernel.metrics
    refresh = getattr(kernel, "refresh_metrics", None)
    if callable(refresh):
        refresh()
    return getattr(metrics, "registry", metrics)


def plugins(kernel: Any) -> list[dict[str, Any]]:
    manager = _get(kernel, "plugin_manager", "plugins", "pm")
    lister = getattr(manager, "list_plugins", None)
    if callable(lister):
        return [info.to_json() if hasattr(info, "to_json") else info for info in lister()]
    return cli_local.list_plugins(None)


def status(kernel: Any, started: float) -> dict[str, Any]:
    config = getattr(kernel, "config", None)
    server = getattr(config, "server", None)
    started = getattr(kernel, "started_at", None) or started
    instances = _instances(kernel)
    scheduler = getattr(kernel, "scheduler", None)
    stats = scheduler.statistics() if scheduler is not None and hasattr(scheduler, "statistics") else {}
    hooks = getattr(kernel, "hooks", None)
    try:
        capabilities = hooks.capability_reports() if hooks is not None else {}
    except Exception as exc:  # a broken report must not break status
        capabilities = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "status": "draining" if getattr(kernel, "draining", False) else "running",
        "version": cli_local.version(),
        "pid": os.getpid(),
        "started_at": started,
        "uptime": round(time.time() - started, 3),
        "data_plane": _get(kernel, "data_address") or getattr(server, "data_bind", ""),
        "control": _get(kernel, "control_address") or getattr(server, "control_bind", ""),
        "state_dir": str(getattr(server, "state_dir", "") or getattr(kernel, "state_dir", "")),
        "state_dir_bytes": state_usage(kernel),
        "deploy_jobs": _jobs(kernel),
        "functions": len(kernel.registry.all()),
        "instances": len(instances),
        "plugins": [p["name"] for p in plugins(kernel) if p.get("enabled")],
        "capabilities": capabilities,
        "scheduler": stats,
    }


def state_usage(kernel: Any) -> dict[str, int]:
    """Bytes under the state directory, by top-level entry (the registry, snapshots...)."""
    root = getattr(kernel, "state_dir", None)
    if root is None:
        return {}
    usage: dict[str, int] = {}
    try:
        entries = list(os.scandir(root))
    except OSError:
        return {}
    for entry in entries:
        usage[entry.name] = _du(entry)
    usage["total"] = sum(usage.values())
    return usage


def _du(entry: os.DirEntry[str]) -> int:
    try:
        if entry.is_symlink():
            return 0
        if not entry.is_dir():
            return entry.stat().st_size
        return sum(_du(e) for e in os.scandir(entry.path))
    except OSError:
        return 0


def _jobs(kernel: Any) -> dict[str, int]:
    jobs = getattr(kernel, "jobs", None)
    return {"running": jobs.running, "started": jobs.started} if jobs is not None else {}


def kv_inspect(kernel: Any, namespace: str | None, values: bool) -> dict[str, Any] | None:
    backend = _get(kernel, "kv", "kv_backend")
    if backend is None or not hasattr(backend, "inspect"):
        return None
    return backend.inspect(namespace, values)
