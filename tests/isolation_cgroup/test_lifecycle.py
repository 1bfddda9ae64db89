"""Start-up, stale clean-up, unusable hosts and the plugin's hooks (real cgroups)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import attrs
import pluggy
import pytest

from kernel import hookspecs
from kernel.errors import StartupError
from kernel.sandbox import Sandbox
from plugins.isolation_cgroup import plugin
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.manager import CgroupManager, Unusable, owner_alive, proc_starttime
from plugins.isolation_cgroup.mountinfo import CgroupLayout
from plugins.isolation_cgroup.state import State

from .helpers import info_for, needs_v1, read_all, spawn_in, unique_root, wait_exit


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@needs_v1
def test_stale_trees_of_gone_daemons_are_killed_and_removed() -> None:
    cfg = CgroupConfig(root=unique_root(), version="v1")
    # A daemon that crashed: its tree is left with a process still inside.
    dead = CgroupManager(cfg, pid=_dead_pid())
    dead.start()
    name = dead.create(info_for("old", "old-1"), Sandbox().linux.resources)
    sleeper = subprocess.Popen(["sleep", "60"])
    dead.backend.join(name, sleeper.pid)
    # Reap it as init would (a zombie keeps a v1 cgroup busy).
    reaper = threading.Thread(target=sleeper.wait, daemon=True)
    reaper.start()
    # A live daemon sharing the root, and a directory that is not a daemon tree.
    live_proc = subprocess.Popen(["sleep", "60"])
    live = CgroupManager(attrs.evolve(cfg, clean_stale=False), pid=live_proc.pid)
    live.start()
    for d in live.backend.dirs(f"{cfg.root}/not-a-daemon"):
        d.mkdir()
    assert not owner_alive(dead.daemon.rpartition("/")[2])
    assert owner_alive(live.daemon.rpartition("/")[2])

    ours = CgroupManager(cfg)
    try:
        ours.start()
        assert ours.stale_removed == [dead.daemon]
        reaper.join(timeout=5)
        assert sleeper.returncode == -signal.SIGKILL
        assert not dead.backend.exists(dead.daemon)
        assert live.backend.exists(live.daemon)
        assert ours.backend.children(cfg.root) == sorted(
            [ours.daemon.rpartition("/")[2], live.daemon.rpartition("/")[2], "not-a-daemon"]
        )
        assert ours.report()["stale_removed"] == [dead.daemon]
    finally:
        live_proc.kill()
        live_proc.wait()
        live.shutdown()
        ours.backend.remove(f"{cfg.root}/not-a-daemon")
        ours.shutdown()
    assert not ours.backend.exists(cfg.root)


def test_daemon_name_identifies_the_process() -> None:
    m = CgroupManager.__new__(CgroupManager)
    start = proc_starttime(os.getpid())
    assert start is not None and owner_alive(f"daemon-{os.getpid()}-{start}")
    assert not owner_alive(f"daemon-{os.getpid()}-{start + 1}")  # pid reused by another process
    assert owner_alive("something-else")  # not ours to judge
    del m


def test_no_cgroup_filesystem_is_unusable_with_a_clear_message() -> None:
    with pytest.raises(Unusable, match="no usable cgroup hierarchy with a memory controller"):
        CgroupManager(CgroupConfig(), layout=CgroupLayout())


def test_required_unusable_stops_startup_and_optional_warns(caplog: pytest.LogCaptureFixture) -> None:
    def factory(config: CgroupConfig) -> CgroupManager:
        return CgroupManager(config, layout=CgroupLayout())

    state = State()
    with pytest.raises(StartupError, match=r"required = false") as exc:
        state.start(None, factory)
    assert "Delegate=yes" in str(exc.value)
    state.config = CgroupConfig(required=False)
    state.start(None, factory)
    assert state.manager is None and "WITHOUT MEMORY, CPU OR PIDS LIMITS" in caplog.text
    assert state.report() == {"enabled": True, "usable": False, "reason": state.unusable}


@needs_v1
def test_unprivileged_daemon_cannot_use_cgroups() -> None:
    """As uid nobody (no delegated subtree) start-up fails, or warns with required = false."""
    code = f"""
import json, os, sys
from kernel.errors import StartupError
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.state import State
os.setgid(65534); os.setuid(65534)
out = {{}}
for required in (True, False):
    s = State(); s.config = CgroupConfig(root={unique_root()!r}, required=required)
    try:
        s.start(None); out[str(required)] = ["started", s.report()]
    except StartupError as exc:
        out[str(required)] = ["error", str(exc)]
print(json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=os.getcwd()
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    kind, message = out["True"]
    assert kind == "error" and "Permission denied" in message and "root" in message
    kind, report = out["False"]
    assert kind == "started" and report["usable"] is False and "Permission denied" in report["reason"]
    assert "WITHOUT MEMORY" in proc.stderr


def test_plugin_hooks_match_the_specs() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, "isolation_cgroup")
    pm.check_pending()
    [section] = [s for s in pm.hook.noslate_config_section() if s]
    assert (section.name, section.cls) == ("isolation_cgroup", CgroupConfig)
    [layers] = pm.hook.noslate_isolation_layers()
    assert [(layer.name, layer.phase) for layer in layers] == [("isolation_cgroup", "cgroup")]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        CgroupConfig(join="sometimes")
    with pytest.raises(ValueError):
        CgroupConfig(root="../escape")


@needs_v1
def test_plugin_startup_report_and_shutdown_through_hooks() -> None:
    saved = dict(plugin.STATE.__dict__)
    cfg = CgroupConfig(root=unique_root())

    class Config:
        def plugin_section(self, name: str) -> object:
            return cfg if name == "isolation_cgroup" else None

    try:
        plugin.noslate_configure(config=Config())
        plugin.noslate_startup(kernel=None)
        report = plugin.noslate_capability_report()["isolation_cgroup"]
        assert report["usable"] is True and report["backend"] == "v1"
        assert set(report["controllers"]) == {"memory", "cpu", "cpuacct", "pids"}
        assert report["host"] in ("v1", "hybrid") and report["root_user"] is True
        tree = report["tree"]
        assert all(os.path.isdir(t) for t in tree)
        layer = plugin.noslate_isolation_layers()[0]
        from kernel.profile import parse_profile

        sb = Sandbox()
        plugin.noslate_sandbox_contribute(sandbox=sb, function=parse_profile({"name": "h"}), role="cold")
        layer.prepare(sb, info_for("h", "h-1", "cold"))
        pid, out = spawn_in(layer, sb, "import time; print('in', flush=True); time.sleep(60)")
        got = b""
        while not got.endswith(b"\n") and (chunk := os.read(out, 3)):
            got += chunk
        assert got == b"in\n"
        plugin.noslate_shutdown(kernel=None)  # kills what is left, removes the tree
        assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
        read_all(out)
        assert not any(os.path.exists(t) for t in tree)
        after = plugin.noslate_capability_report()["isolation_cgroup"]
        assert after["usable"] is None and "memory" in after["v1_controllers"]
    finally:
        plugin.STATE.stop()
        plugin.STATE.__dict__.clear()
        plugin.STATE.__dict__.update(saved)


@needs_v1
def test_stopping_one_daemon_keeps_another_daemons_tree() -> None:
    """Two daemons share the root; the one that stops must not remove the other's tree.

    Regression: shutdown removed the root recursively, deleting every momentarily
    empty tree of the daemons still running beside it.
    """
    cfg = CgroupConfig(root=unique_root(), version="v1", clean_stale=False)
    other_proc = subprocess.Popen(["sleep", "60"])
    other = CgroupManager(cfg, pid=other_proc.pid)
    other.start()
    leaving = CgroupManager(cfg)
    try:
        leaving.start()
        other.create(info_for("fn", "fn-1"), Sandbox().linux.resources)  # an empty instance cgroup
        leaving.shutdown()
        assert not leaving.backend.exists(leaving.daemon)
        assert other.backend.exists(other.daemon)
        assert other.backend.exists(f"{other.daemon}/fn/fn-1")
    finally:
        other_proc.kill()
        other_proc.wait()
        other.shutdown()
    assert not other.backend.exists(cfg.root)
