"""Owners of KV/Cache namespaces: a namespace belongs to the function that created it.

A function's namespace is its ``namespace`` field, or its own name. The first
function to use a namespace owns it (the registry records it); another function may
use it only when the owner's profile lists it in ``namespaceGrants`` (or ``"*"``),
and a name of another deployed function is never taken as a namespace without that
function's grant. An owner cannot withdraw a grant a running function depends on,
and when an owner is removed, the namespace passes to a function still using it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.profile import FunctionProfile


def grants(owner: FunctionProfile, name: str) -> bool:
    return "*" in owner.namespace_grants or name in owner.namespace_grants


def namespace_errors(profile: FunctionProfile, registry: Any, current: Mapping[str, Any]) -> list[str]:
    """``message @ $.path`` lines when ``profile`` may not have the namespace it asks for,
    or withdraws a grant another deployed function uses. ``current``: name -> version."""
    errors = []
    name, namespace = profile.name, profile.kv_namespace
    recorded = registry.namespace_owner(namespace)
    owner = recorded
    if owner is None and namespace != name and namespace in current:
        owner = namespace  # another function's name: only with its grant
    if owner is not None and owner != name:
        owner_version = current.get(owner)
        if owner_version is not None and not grants(owner_version.profile, name):
            errors.append(
                f"namespace {namespace!r} belongs to function {owner!r}: its profile must list {name!r} "
                "in namespaceGrants before another function may use it @ $.namespace"
            )
    if recorded in (name, None):
        for other, version in sorted(current.items()):
            if other != name and version.profile.kv_namespace == namespace and not grants(profile, other):
                errors.append(
                    f"function {other!r} uses this function's namespace {namespace!r}: keep {other!r} in "
                    "namespaceGrants (or change its namespace first) @ $.namespaceGrants"
                )
    return errors
