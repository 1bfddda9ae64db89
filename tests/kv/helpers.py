"""Shared helpers of the kv tests."""

from __future__ import annotations

from typing import Any

import pytest

from kernel.interfaces import KVError
from plugins.kv_lru.backend import LRUBackend
from plugins.kv_lru.config import KVLRUConfig


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def backend(clock: FakeClock | None = None, **limits: Any) -> LRUBackend:
    """An LRUBackend with ``limits`` overriding the defaults and a fake clock."""
    return LRUBackend(KVLRUConfig(**limits), clock=clock or FakeClock())


def call(b: LRUBackend, ns: str, op: str, *args: Any) -> Any:
    """Perform one op synchronously."""
    return b.call_sync(ns, op, list(args))


def raises(name: str, match: str | None = None) -> Any:
    """``pytest.raises`` for a KVError with JS error name ``name``."""

    class _Ctx:
        def __enter__(self) -> Any:
            self._cm = pytest.raises(KVError, match=match)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *exc: Any) -> bool:
            handled = self._cm.__exit__(*exc)
            assert self.info.value.name == name, f"expected {name}, got {self.info.value.name}"
            return handled

    return _Ctx()
