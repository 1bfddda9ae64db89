"""runtime_node tests need the Node worker host bundle and a Node binary."""

from __future__ import annotations

import pytest

from plugins.runtime_node.snapshot import HOST_BUNDLE


@pytest.fixture(scope="session", autouse=True)
def host_bundle() -> None:
    if not HOST_BUNDLE.exists():
        pytest.skip(f"{HOST_BUNDLE} is missing: run sh plugins/runtime_node/js/build.sh")
