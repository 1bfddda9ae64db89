"""Fixtures for runtime_v8 tests: the JS bundle is built on demand."""

from __future__ import annotations

import shutil

import pytest

from plugins.runtime_v8 import runtime_js


@pytest.fixture(scope="session", autouse=True)
def runtime_bundle() -> None:
    """Build the runtime bundle when it is missing or older than its sources."""
    if runtime_js.stale():
        if shutil.which("node") is None:
            pytest.skip("node is not installed: cannot build the runtime bundle")
        runtime_js.build()
    runtime_js.runtime_source.cache_clear()
