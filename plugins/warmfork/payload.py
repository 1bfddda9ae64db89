"""What a seed's ``load`` and an instance's ``serve`` receive.

A runtime may shape these itself with ``runtime.seed_payload(version, seed_id)`` and
``runtime.instance_init(request)``; otherwise the defaults below follow the init keys
of ``COMMON``: ``function``, ``version``, ``instance``, ``env``, ``v8_options``,
``limits``, ``log_level``.
"""

from __future__ import annotations

from typing import Any

from kernel.interfaces import FunctionVersion, StartRequest
from kernel.profile import FunctionProfile


def base_init(profile: FunctionProfile, version: str, instance: str) -> dict[str, Any]:
    limits = profile.resource_limit
    return {
        "function": profile.name,
        "version": version,
        "instance": instance,
        "env": {e.key: e.value for e in profile.environments},
        "v8_options": list(profile.worker.v8_options),
        "limits": {
            "memory": limits.memory,
            "cpu": limits.cpu,
            "pids": limits.pids,
            "cpu_time_limit_ms": profile.worker.cpu_time_limit_ms,
        },
        "log_level": "info",
    }


def seed_payload(runtime: Any, fv: FunctionVersion, seed_id: str) -> Any:
    custom = getattr(runtime, "seed_payload", None)
    if custom is not None:
        return custom(fv, seed_id)
    return {"artifact": fv.artifact, "init": base_init(fv.profile, fv.version, seed_id)}


def instance_init(runtime: Any, request: StartRequest) -> dict[str, Any]:
    custom = getattr(runtime, "instance_init", None)
    if custom is not None:
        return custom(request)
    return base_init(request.version.profile, request.version.version, request.instance)
