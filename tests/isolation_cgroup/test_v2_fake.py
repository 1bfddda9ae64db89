"""The cgroup v2 backend against a fake cgroupfs tree (this host has no v2 controllers)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from kernel.sandbox import Resources, Sandbox
from plugins.isolation_cgroup.backend import V1Backend, V2Backend
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.layer import JOIN_KEY, PROCS_KEY, CgroupLayer
from plugins.isolation_cgroup.manager import CgroupManager, Unusable, choose_backend, proc_starttime
from plugins.isolation_cgroup.mountinfo import CgroupLayout, Hierarchy
from plugins.isolation_cgroup.state import State

from .fakefs import FakeCgroupFS
from .helpers import info_for

SERVICE = "system.slice/noslate.service"
ALL = "cpuset cpu io memory pids"
ENABLE = "+memory +cpu +pids"


@pytest.fixture
def fake(tmp_path: Path) -> FakeCgroupFS:
    """A v2 tree like systemd's: the daemon (100) and its launcher (101) in the service."""
    fs = FakeCgroupFS(tmp_path / "cgroup")
    fs.make_root(ALL)
    fs.mkdir(fs.mount / "system.slice")
    fs.write(fs.mount / "system.slice" / "cgroup.subtree_control", "+cpu +memory +pids")
    fs.mkdir(fs.mount / SERVICE)
    (fs.mount / SERVICE / "cgroup.procs").write_text("100\n101\n")
    fs.writes.clear()
    return fs


def layout_for(fs: FakeCgroupFS, controllers: str = ALL) -> CgroupLayout:
    return CgroupLayout(v2=Hierarchy(2, fs.mount, "/", tuple(controllers.split()), "/" + SERVICE))


def started(fs: FakeCgroupFS, **cfg: object) -> CgroupManager:
    m = CgroupManager(CgroupConfig(root="noslate", **cfg), layout_for(fs), fs, pid=os.getpid())
    m.start()
    return m


def test_start_moves_the_daemon_to_a_leaf_and_enables_controllers(fake: FakeCgroupFS) -> None:
    m = started(fake)
    daemon = f"noslate/daemon-{os.getpid()}-{proc_starttime(os.getpid())}"
    assert m.daemon == daemon
    assert fake.writes == [
        (f"{SERVICE}/supervisor/cgroup.procs", "100"),
        (f"{SERVICE}/supervisor/cgroup.procs", "101"),
        (f"{SERVICE}/cgroup.subtree_control", ENABLE),
        (f"{SERVICE}/noslate/cgroup.subtree_control", ENABLE),
        (f"{SERVICE}/{daemon}/cgroup.subtree_control", ENABLE),
    ]
    assert (fake.mount / SERVICE / "cgroup.procs").read_text() == ""
    report = m.report()
    assert (report["backend"], report["host"], report["controllers"]) == (
        "v2",
        "v2",
        ["memory", "cpu", "pids"],
    )


def test_instance_cgroup_gets_exact_limit_writes(fake: FakeCgroupFS) -> None:
    m = started(fake)
    fake.writes.clear()
    res = Resources(memory_limit=64 << 20, cpu_quota=25_000, cpu_period=100_000, pids_limit=64)
    name = m.create(info_for("hello", "hello-1"), res)
    inst = f"{SERVICE}/{m.daemon}/hello/hello-1"
    assert name == f"{m.daemon}/hello/hello-1"
    assert fake.writes == [
        (f"{SERVICE}/{m.daemon}/hello/cgroup.subtree_control", ENABLE),
        (f"{inst}/memory.max", str(64 << 20)),
        (f"{inst}/memory.swap.max", "0"),
        (f"{inst}/memory.oom.group", "1"),
        (f"{inst}/cpu.max", "25000 100000"),
        (f"{inst}/pids.max", "64"),
    ]
    fake.writes.clear()  # a second instance of the function: one mkdir, limits only
    m.create(info_for("hello", "hello-2"), Resources(memory_limit=1 << 30, pids_limit=8))
    inst2 = f"{SERVICE}/{m.daemon}/hello/hello-2"
    assert fake.writes == [
        (f"{inst2}/memory.max", str(1 << 30)),
        (f"{inst2}/memory.swap.max", "0"),
        (f"{inst2}/memory.oom.group", "1"),
        (f"{inst2}/cpu.max", "max 100000"),
        (f"{inst2}/pids.max", "8"),
    ]
    assert m.backend.limits(name) == res


def test_layer_join_release_and_oom_on_v2(fake: FakeCgroupFS) -> None:
    state = State()
    state.manager = started(fake)
    layer = CgroupLayer(state)
    sb = Sandbox()
    sb.linux.resources.memory_limit = 32 << 20
    info = info_for("hog", "hog-1", role="cold")
    layer.prepare(sb, info)
    assert sb.annotations[JOIN_KEY] == "child"
    forked = Sandbox()  # an instance forked from a (sandboxed) seed is moved in by the launcher
    layer.prepare(forked, info_for("hog", "hog-9"))
    assert forked.annotations[JOIN_KEY] == "launcher"
    assert layer.release(forked, info_for("hog", "hog-9")) is None
    inst = fake.mount / SERVICE / state.manager.daemon / "hog" / "hog-1"
    assert sb.annotations[PROCS_KEY] == str(inst / "cgroup.procs")
    assert sb.linux.cgroupsPath == f"/{SERVICE}/{state.manager.daemon}/hog/hog-1"
    layer.apply(sb)  # join = child: the process writes "0" (itself)
    assert (inst / "cgroup.procs").read_text() == "0"
    sb.annotations[JOIN_KEY] = "launcher"
    layer.attach(sb, 4321)
    assert (inst / "cgroup.procs").read_text() == "4321"
    (inst / "cgroup.procs").write_text("")  # the process exited
    (inst / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n")
    (inst / "memory.peak").write_text(f"{32 << 20}\n")
    seen = []
    state.on_oom = lambda i, limit, usage: seen.append((i.instance, limit, usage["memory_peak_bytes"]))
    assert layer.release(sb, info) == "oom"
    assert seen == [("hog-1", 32 << 20, 32 << 20)]
    assert not inst.exists()  # OOM-killed: removed, never reused
    assert sorted(p.name for p in inst.parent.iterdir() if p.is_dir()) == ["hog-9"]  # parked


def test_kill_all_uses_cgroup_kill(fake: FakeCgroupFS) -> None:
    m = started(fake)
    name = m.create(info_for("f", "f-1"), Resources(memory_limit=1 << 20))
    sleeper = subprocess.Popen(["sleep", "60"])
    threading.Thread(target=sleeper.wait, daemon=True).start()
    fake.write(fake.mount / SERVICE / name / "cgroup.procs", str(sleeper.pid))
    fake.writes.clear()
    m.shutdown()
    assert fake.writes == [(f"{SERVICE}/{m.daemon}/cgroup.kill", "1")]
    sleeper.wait(timeout=5)
    assert sleeper.returncode == -9
    assert fake.subdirs(fake.mount / SERVICE) == ["supervisor"]


def test_backend_choice() -> None:
    v2full = Hierarchy(2, Path("/sys/fs/cgroup"), "/", ("cpu", "memory", "pids"), "/")
    v2empty = Hierarchy(2, Path("/sys/fs/cgroup/unified"), "/", ("hugetlb",), "/")
    v1 = {c: Hierarchy(1, Path(f"/sys/fs/cgroup/{c}"), "/", (c,), "/") for c in ("memory", "cpu", "pids")}
    assert isinstance(choose_backend(CgroupConfig(), CgroupLayout(v2=v2full)), V2Backend)
    assert isinstance(choose_backend(CgroupConfig(), CgroupLayout(v2=v2empty, v1=v1)), V1Backend)
    assert isinstance(choose_backend(CgroupConfig(version="v1"), CgroupLayout(v2=v2full, v1=v1)), V1Backend)
    with pytest.raises(Unusable, match=r"no memory controller .*cgroup\.controllers: hugetlb"):
        choose_backend(CgroupConfig(version="v2"), CgroupLayout(v2=v2empty, v1=v1))
    with pytest.raises(Unusable, match="no cgroup2 file system is mounted"):
        choose_backend(CgroupConfig(version="v2"), CgroupLayout(v1=v1))
    b = choose_backend(CgroupConfig(parent="/custom"), CgroupLayout(v2=v2full))
    assert b.base_dirs() == [Path("/sys/fs/cgroup/custom")]
