"""Fixtures for the isolation_cgroup tests: real v1 cgroups under a unique root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.layer import CgroupLayer
from plugins.isolation_cgroup.state import State

from .helpers import V1_SKIP, RecordingKernel, unique_root


@pytest.fixture
def cg_state() -> Iterator[State]:
    """A started plugin state with its own root; everything removed afterwards."""
    if V1_SKIP:
        pytest.skip(V1_SKIP)
    state = State()
    state.config = CgroupConfig(root=unique_root(), version="v1")
    state.start(RecordingKernel())
    assert state.manager is not None
    manager = state.manager
    yield state
    state.stop()
    leftovers = [d for d in manager.backend.base_dirs() if (d / state.config.root).exists()]
    assert not leftovers, f"cgroups left behind: {leftovers}"


@pytest.fixture
def layer(cg_state: State) -> CgroupLayer:
    return CgroupLayer(cg_state)
