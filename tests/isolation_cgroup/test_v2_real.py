"""The v2 backend on this host's real cgroup2 tree (it has no controllers: no limits,
but creation, joining, clone3(CLONE_INTO_CGROUP), cgroup.kill and removal are real)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kernel.sandbox import Sandbox
from plugins.isolation_cgroup.backend import V2Backend
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.layer import CgroupLayer
from plugins.isolation_cgroup.manager import CgroupManager
from plugins.isolation_cgroup.mountinfo import detect
from plugins.isolation_cgroup.state import State

from .helpers import info_for, unique_root, wait_exit

LAYOUT = detect()
pytestmark = pytest.mark.skipif(
    LAYOUT.v2 is None or os.geteuid() != 0, reason="needs root and a mounted cgroup2 tree"
)


@pytest.fixture
def v2_state() -> State:
    h = LAYOUT.v2
    assert h is not None
    backend = V2Backend(h.path_of(h.own), ())  # no controllers here: structure only
    manager = CgroupManager(CgroupConfig(root=unique_root(), version="v2"), LAYOUT, backend=backend)
    manager.start()
    state = State()
    state.manager = manager
    yield state
    state.stop()
    assert not (backend.base / manager.config.root).exists()


def _child_cgroup(pid: int) -> str:
    return next(
        line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.startswith("0::")
    )


@pytest.mark.parametrize("how", ["clone3", "child-joins"])
def test_process_lands_in_its_v2_cgroup_and_dies_with_it(v2_state: State, how: str) -> None:
    layer = CgroupLayer(v2_state)
    sb = Sandbox()
    info = info_for("fn", f"fn-{how}")
    layer.prepare(sb, info)
    r, w = os.pipe()
    pid = layer.fork_into_cgroup(sb) if how == "clone3" else os.fork()
    assert pid is not None
    if pid == 0:
        try:
            os.close(r)
            layer.apply(sb)  # a no-op for a clone3 child, a cgroup.procs write otherwise
            os.write(w, b"ready")
            signal.pause()
        finally:
            os._exit(1)
    os.close(w)
    layer.attach(sb, pid)
    assert os.read(r, 5) == b"ready"
    assert _child_cgroup(pid) == f"0::{sb.linux.cgroupsPath}"
    assert v2_state.manager.backend.procs(v2_state.manager.name_for(info)) == {pid}
    v2_state.stop()  # cgroup.kill, then rmdir
    assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
    os.close(r)
