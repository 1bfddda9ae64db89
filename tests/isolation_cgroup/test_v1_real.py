"""Real processes in real cgroup v1 hierarchies: limits, OOM attribution, throttling, pids."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kernel.profile import parse_profile
from kernel.sandbox import Sandbox
from plugins.isolation_cgroup import plugin
from plugins.isolation_cgroup.layer import JOIN_KEY, CgroupLayer
from plugins.isolation_cgroup.state import State

from .helpers import info_for, needs_v1, read_all, spawn_in, wait_exit

pytestmark = [needs_v1, pytest.mark.root]

MEMORY_HOG = """
chunks = []
for _ in range(256):
    chunks.append(b"\\x01" * (8 << 20))   # 8 MiB written, up to 2 GiB
print("survived", flush=True)
"""

CPU_HOG = "while True: pass"

FORK_STORM = """
import os, sys, time
n = 0
try:
    while n < 500:
        pid = os.fork()
        if pid == 0:
            os.close(1)
            time.sleep(60)
            os._exit(0)
        n += 1
    print(f"{n} no-error", flush=True)
except OSError as exc:
    print(f"{n} {exc.errno}", flush=True)
"""


def sandbox_for(state: State, profile: dict, role: str = "instance") -> Sandbox:
    """Run the plugin's contribute hook against a parsed Noslate profile."""
    sandbox = Sandbox()
    plugin.STATE.__dict__.update(state.__dict__)  # the hook reads the module's state
    plugin.noslate_sandbox_contribute(sandbox=sandbox, function=parse_profile(profile), role=role)
    return sandbox


@pytest.fixture(autouse=True)
def _restore_plugin_state():
    saved = dict(plugin.STATE.__dict__)
    yield
    plugin.STATE.__dict__.clear()
    plugin.STATE.__dict__.update(saved)


def test_memory_hog_is_oom_killed_and_attributed(
    cg_state: State, layer: CgroupLayer, caplog: pytest.LogCaptureFixture
) -> None:
    sb = sandbox_for(cg_state, {"name": "hog", "resourceLimit": {"memory": 64 << 20}})
    info = info_for("hog", "hog-1")
    layer.prepare(sb, info)
    pid, out = spawn_in(layer, sb, MEMORY_HOG)
    status = wait_exit(pid)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, read_all(out)
    assert "survived" not in read_all(out)
    assert layer.release(sb, info) == "oom"
    expected = (
        "instance hog-1 of function hog@sha256:test was OOM-killed by the kernel at its memory limit of"
    )
    assert f"{expected} {64 << 20} bytes (peak usage" in caplog.text
    assert cg_state.oom_kills == {"hog": 1}
    assert not cg_state.manager.backend.exists(cg_state.manager.name_for(info))


def test_normal_exit_is_not_oom(cg_state: State, layer: CgroupLayer) -> None:
    sb = sandbox_for(cg_state, {"name": "fine", "resourceLimit": {"memory": 64 << 20}})
    info = info_for("fine", "fine-1")
    layer.prepare(sb, info)
    pid, out = spawn_in(layer, sb, "import sys; sys.exit(3)")
    assert os.waitstatus_to_exitcode(wait_exit(pid)) == 3
    read_all(out)
    assert layer.release(sb, info) is None
    assert cg_state.oom_kills == {}


@pytest.mark.parametrize("join", ["child", "launcher"])
def test_cgroup_carries_profile_limits(cg_state: State, layer: CgroupLayer, join: str) -> None:
    profile = {"name": "lim", "resourceLimit": {"memory": 100 << 20, "cpu": 0.25, "pids": 32}}
    sb = sandbox_for(cg_state, profile)
    assert (sb.linux.resources.memory_limit, sb.linux.resources.cpu_quota) == (100 << 20, 25_000)
    info = info_for("lim", f"lim-{join}")
    layer.prepare(sb, info)
    sb.annotations[JOIN_KEY] = join
    pid, out = spawn_in(layer, sb, "import sys; print(open('/proc/self/cgroup').read(), flush=True)")
    text = read_all(out)
    wait_exit(pid)
    b = cg_state.manager.backend
    name = cg_state.manager.name_for(info)
    assert (b.dir_for("memory", name) / "memory.limit_in_bytes").read_text().strip() == str(100 << 20)
    assert (b.dir_for("cpu", name) / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (b.dir_for("cpu", name) / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (b.dir_for("pids", name) / "pids.max").read_text().strip() == "32"
    # The process really ran inside the instance's cgroup in every hierarchy.
    lines = dict(line.split(":", 2)[1:] for line in text.splitlines() if line)
    for ctrl in ("memory", "cpu", "cpuacct", "pids"):
        assert lines[ctrl].endswith(f"/lim/lim-{join}"), (ctrl, lines)
    assert sb.linux.cgroupsPath == lines["memory"]
    assert layer.release(sb, info) is None


def test_seed_gets_extra_pids(cg_state: State) -> None:
    seed = sandbox_for(cg_state, {"name": "s", "resourceLimit": {"pids": 10}}, role="seed")
    inst = sandbox_for(cg_state, {"name": "s", "resourceLimit": {"pids": 10}}, role="instance")
    assert inst.linux.resources.pids_limit == 10
    assert seed.linux.resources.pids_limit == 10 + cg_state.config.seed_extra_pids


def test_cpu_hog_is_throttled_to_its_quota(cg_state: State, layer: CgroupLayer) -> None:
    sb = sandbox_for(cg_state, {"name": "spin", "resourceLimit": {"cpu": 0.2}})
    info = info_for("spin", "spin-1")
    layer.prepare(sb, info)
    pid, out = spawn_in(layer, sb, CPU_HOG)
    try:
        time.sleep(0.3)  # past interpreter start-up
        u0, t0 = layer.usage(info)["cpu_usec"], time.monotonic()
        time.sleep(1.0)
        u1, t1 = layer.usage(info)["cpu_usec"], time.monotonic()
    finally:
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid)
        read_all(out)
    share = (u1 - u0) / 1e6 / (t1 - t0)
    # Quota 20% of a core; unthrottled it would be ~100%. Generous bounds: noisy box.
    assert 0.05 < share < 0.35, f"CPU share {share:.2f}, expected ~0.2"
    stat = (cg_state.manager.backend.dir_for("cpu", cg_state.manager.name_for(info)) / "cpu.stat").read_text()
    assert int(dict(line.split() for line in stat.splitlines())["nr_throttled"]) > 0
    assert layer.release(sb, info) is None


def test_fork_storm_stops_at_pids_limit(cg_state: State, layer: CgroupLayer) -> None:
    sb = sandbox_for(cg_state, {"name": "storm", "resourceLimit": {"pids": 16}})
    info = info_for("storm", "storm-1")
    layer.prepare(sb, info)
    pid, out = spawn_in(layer, sb, FORK_STORM)
    text = read_all(out, timeout=20)
    wait_exit(pid)
    n, err = text.split()
    assert err == "11", f"expected EAGAIN, got {text!r}"  # errno.EAGAIN
    assert 0 < int(n) < 16
    name = cg_state.manager.name_for(info)
    survivors = cg_state.manager.backend.procs(name)
    assert len(survivors) == int(n)  # the sleeping children are still in the cgroup...
    assert layer.release(sb, info) is None
    for p in survivors:  # ...and release killed them with it
        assert not Path(f"/proc/{p}").exists() or "Z" in Path(f"/proc/{p}/stat").read_text().split()[2]


def test_release_and_shutdown_leave_nothing(cg_state: State, layer: CgroupLayer) -> None:
    manager = cg_state.manager
    sbs = []
    for i in range(3):
        sb = sandbox_for(cg_state, {"name": f"f{i % 2}"})
        info = info_for(f"f{i % 2}", f"f{i % 2}-{i}")
        layer.prepare(sb, info)
        sbs.append((sb, info))
    sb, info = sbs[0]
    pid, out = spawn_in(layer, sb, "import time; print('in', flush=True); time.sleep(60)")
    got = b""
    while not got.endswith(b"\n") and (chunk := os.read(out, 3)):
        got += chunk
    assert got == b"in\n"  # it runs inside its cgroup now
    assert layer.release(*sbs[1]) is None
    # f1's cgroup is parked (empty) for f1's next process; f0 keeps both of its.
    assert manager.backend.children(manager.daemon) == ["f0", "f1"]
    assert manager.backend.children(f"{manager.daemon}/f0") == ["f0-0", "f0-2"]
    assert manager.backend.procs(f"{manager.daemon}/f1") == set()
    assert manager.idle.count(f"{manager.daemon}/f1") == 1
    for d in manager.backend.dirs(manager.daemon):
        assert d.is_dir()
    cg_state.stop()  # shutdown: kills the sleeper, removes every cgroup
    assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
    read_all(out)
    for d in manager.backend.base_dirs():
        assert not (d / cg_state.config.root).exists()
