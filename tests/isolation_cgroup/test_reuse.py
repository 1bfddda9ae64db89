"""Reuse of instance cgroups (real v1): parked, handed out again, limits, OOM, trim."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import attrs
import pytest

from plugins.isolation_cgroup.layer import CgroupLayer
from plugins.isolation_cgroup.state import State

from .helpers import info_for, needs_v1, read_all, spawn_in, wait_exit
from .test_v1_real import MEMORY_HOG, _restore_plugin_state, sandbox_for  # noqa: F401

pytestmark = [needs_v1, pytest.mark.root]

LEAVES_CHILD = """
import os, time
if os.fork() == 0:
    os.close(1)
    time.sleep(60)
    os._exit(0)
chunk = b"\\x01" * (24 << 20)
print("parent done", flush=True)
"""


def _run(layer: CgroupLayer, sb, code: str) -> int:
    pid, out = spawn_in(layer, sb, code)
    status = wait_exit(pid)
    read_all(out)
    return status


def _mem(state: State, name: str) -> Path:
    return state.manager.backend.dir_for("memory", name)


def test_next_instance_gets_the_parked_cgroup_clean(cg_state: State, layer: CgroupLayer) -> None:
    manager = cg_state.manager
    sb1 = sandbox_for(cg_state, {"name": "d", "resourceLimit": {"memory": 96 << 20}})
    i1 = info_for("d", "d-1")
    layer.prepare(sb1, i1)
    first = manager.name_for(i1)
    pid, out = spawn_in(layer, sb1, LEAVES_CHILD)
    assert os.waitstatus_to_exitcode(wait_exit(pid)) == 0
    assert "parent done" in read_all(out)
    leftover = manager.backend.procs(first)
    assert len(leftover) == 1  # the orphan still sleeps in the cgroup
    assert layer.release(sb1, i1) is None
    assert manager.backend.procs(first) == set()  # release killed it
    assert manager.idle.count(first.rpartition("/")[0]) == 1
    peak = _mem(cg_state, first) / "memory.max_usage_in_bytes"
    assert int(peak.read_text()) < 24 << 20  # the peak was reset for the next process

    sb2 = sandbox_for(cg_state, {"name": "d", "resourceLimit": {"memory": 96 << 20}})
    i2 = info_for("d", "d-2")
    layer.prepare(sb2, i2)
    assert manager.name_for(i2) == first  # reused, not created
    assert manager.stats["created"] == 1 and manager.stats["reused"] == 1
    assert sb2.linux.cgroupsPath == manager.path_of(first)
    pid, out = spawn_in(layer, sb2, "print('again', flush=True)")
    assert read_all(out) == "again\n"
    assert os.waitstatus_to_exitcode(wait_exit(pid)) == 0
    assert layer.release(sb2, i2) is None


def test_reused_cgroup_takes_the_new_limits(cg_state: State, layer: CgroupLayer) -> None:
    manager = cg_state.manager
    sb = sandbox_for(cg_state, {"name": "v", "resourceLimit": {"memory": 64 << 20, "cpu": 0.5}})
    info = info_for("v", "v-1")
    layer.prepare(sb, info)
    name = manager.name_for(info)
    assert layer.release(sb, info) is None  # never ran anything: still parked
    sb = sandbox_for(cg_state, {"name": "v", "resourceLimit": {"memory": 32 << 20, "cpu": 0.25}})
    info = info_for("v", "v-2")
    layer.prepare(sb, info)
    assert manager.name_for(info) == name
    got = manager.backend.limits(name)
    want = sb.linux.resources
    assert (got.memory_limit, got.cpu_quota, got.pids_limit) == (32 << 20, 25_000, want.pids_limit)
    assert layer.release(sb, info) is None


def test_oom_is_attributed_only_to_the_killed_instance(cg_state: State, layer: CgroupLayer) -> None:
    manager = cg_state.manager
    profile = {"name": "h", "resourceLimit": {"memory": 64 << 20}}
    sb, info = sandbox_for(cg_state, profile), info_for("h", "h-1")
    layer.prepare(sb, info)
    assert _run(layer, sb, "print(1)") == 0
    assert layer.release(sb, info) is None
    parked = manager.name_for(info)
    # The next instance gets the parked cgroup and is OOM-killed in it.
    sb, info = sandbox_for(cg_state, profile), info_for("h", "h-2")
    layer.prepare(sb, info)
    assert manager.name_for(info) == parked
    assert os.WTERMSIG(_run(layer, sb, MEMORY_HOG)) == signal.SIGKILL
    assert layer.release(sb, info) == "oom"
    assert not manager.backend.exists(parked)  # a cgroup that saw an OOM is not reused
    # The instance after it runs in a fresh cgroup and is not blamed.
    sb, info = sandbox_for(cg_state, profile), info_for("h", "h-3")
    layer.prepare(sb, info)
    assert _run(layer, sb, "print(1)") == 0
    assert layer.release(sb, info) is None
    assert cg_state.oom_kills == {"h": 1}


def test_trim_and_pool_cap_remove_parked_cgroups(cg_state: State, layer: CgroupLayer) -> None:
    cg_state.config = attrs.evolve(cg_state.config, pool_max_idle=2, pool_idle_seconds=3600)
    manager = cg_state.manager
    manager.config = cg_state.config
    fn_dir = f"{manager.daemon}/t"
    held = []
    for i in range(4):
        sb, info = sandbox_for(cg_state, {"name": "t"}), info_for("t", f"t-{i}")
        layer.prepare(sb, info)
        held.append((sb, info))
    for sb, info in held:
        assert layer.release(sb, info) is None
    assert len(manager.backend.children(fn_dir)) == 2  # capped at pool_max_idle
    assert manager.trim() == 0  # not idle long enough
    assert manager.trim(now=time.monotonic() + 3600) == 2
    assert not manager.backend.exists(fn_dir)  # the function's cgroup went with the last


def test_reuse_off_removes_each_cgroup(cg_state: State, layer: CgroupLayer) -> None:
    cg_state.config = attrs.evolve(cg_state.config, reuse=False)
    manager = cg_state.manager
    manager.config = cg_state.config
    sb, info = sandbox_for(cg_state, {"name": "o"}), info_for("o", "o-1")
    layer.prepare(sb, info)
    assert layer.release(sb, info) is None
    assert not manager.backend.exists(f"{manager.daemon}/o")
