"""runtime_node tests need the Node worker host bundle and a Node binary."""

from __future__ import annotations

import pytest

from plugins.runtime_node import hostjs


@pytest.fixture(scope="session", autouse=True)
def host_bundle() -> None:
    """Build the host bundle when missing or stale (as the runtime does when it starts)."""
    if not (hostjs.ROOT / "node_modules" / ".bin" / "esbuild").exists() and not hostjs.HOST_BUNDLE.exists():
        pytest.skip("esbuild is not installed (npm ci at the repo root): cannot build the Node worker host")
    hostjs.ensure()
