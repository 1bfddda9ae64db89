"""Rebuild instance sandboxes in a seed, reusing the parts equal to the previous one.

Every instance of a function version gets nearly the same sandbox: only the title,
the annotations and the cgroup path differ; the seccomp rules, mounts and namespaces
(~20 KB of OCI data with the isolation plugins) do not. Structuring all of it again
costs ~1.4 ms per start, and done inside the forked instance it also wrote (copied)
~240 pages. The seed builds the Sandbox before it forks, structuring only the
top-level fields (and ``linux`` fields) whose data changed since the last fork.
"""

from __future__ import annotations

from typing import Any

import attrs

from kernel.sandbox import Linux, Sandbox, _converter

_NESTED = {("linux",): Linux}
"""Fields whose own fields are memoised one by one (they mix shared and per-instance data)."""


class SandboxMemo:
    """``build(raw)`` == ``Sandbox.from_oci(raw)``, reusing structured unchanged parts."""

    def __init__(self) -> None:
        self.parts: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self.hits = 0

    def build(self, raw: dict[str, Any]) -> Sandbox:
        data = {k: v for k, v in raw.items() if k != "ociVersion"}
        try:
            return self._build(Sandbox, data, ())
        except _Fallback:
            return Sandbox.from_oci(raw)  # unknown keys etc.: its errors say what is wrong

    def _build(self, cls: type, data: Any, path: tuple[str, ...]) -> Any:
        if not isinstance(data, dict):
            raise _Fallback
        fields = attrs.fields_dict(cls)
        if any(name not in fields for name in data):
            raise _Fallback
        types = attrs.resolve_types(cls)
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            key = (*path, name)
            nested = _NESTED.get(key)
            if nested is not None:
                kwargs[name] = self._build(nested, value, key)
                continue
            cached = self.parts.get(key)
            if cached is not None and cached[0] == value:
                kwargs[name] = cached[1]
                self.hits += 1
                continue
            built = _converter().structure(value, attrs.fields_dict(types)[name].type)
            self.parts[key] = (value, built)
            kwargs[name] = built
        return cls(**kwargs)


class _Fallback(Exception):
    pass
