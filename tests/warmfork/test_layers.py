"""Isolation layers through the launcher: prepare/attach/apply/release, order and roles."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import trio

from kernel.interfaces import SpawnInfo
from kernel.launcher.client import Launcher, LauncherError
from kernel.sandbox import Sandbox

from .conftest import LOAD, alive, fork


def sandbox(tmp_path: Path, **extra: str) -> Sandbox:
    sb = Sandbox()
    sb.annotations.update({"test.dir": str(tmp_path), **extra})
    return sb


def info(role: str, instance: str) -> SpawnInfo:
    return SpawnInfo(function="fn", version="v1", instance=instance, role=role)


async def test_layers_run_in_the_right_process_and_order(layered: Launcher, tmp_path: Path) -> None:
    with trio.fail_after(30):
        cold = await layered.spawn(
            ["true"], {"PATH": "/usr/bin:/bin"}, sandbox=sandbox(tmp_path), info=info("cold", "fn-1")
        )
        seed = await layered.fork_seed(
            entry=LOAD, payload={}, sandbox=sandbox(tmp_path), info=info("seed", "fn-seed")
        )
        inst, facts, sock = await fork(
            seed, sandbox=sandbox(tmp_path, **{"test.cause": "oom"}), info=info("instance", "fn-2")
        )
        assert await cold.wait() == 0
    files = {p.name for p in tmp_path.iterdir()}
    for layer in ("rec_cgroup", "rec_seccomp"):
        # prepare in the daemon for every process
        assert {
            f"prepare-{layer}-cold-fn-1",
            f"prepare-{layer}-seed-fn-seed",
            f"prepare-{layer}-instance-fn-2",
        } <= files
        # attach in the launcher, with each pid
        for pid in (cold.pid, seed.pid, inst.pid):
            assert json.loads((tmp_path / f"attach-{layer}-{pid}").read_text()) == {"by": layered.pid}
        # apply inside the new process, only after attach
        for role, pid in (("cold", cold.pid), ("seed", seed.pid)):
            assert json.loads((tmp_path / f"apply-{layer}-{role}-{pid}").read_text()) == {
                "attached_first": True
            }
    # an instance re-applies only instance-level phases (cgroup), not seccomp
    assert json.loads((tmp_path / f"apply-rec_cgroup-instance-{inst.pid}").read_text()) == {
        "attached_first": True
    }
    assert not (tmp_path / f"apply-rec_seccomp-instance-{inst.pid}").exists()
    assert facts["ppid"] == seed.pid
    # release in the daemon after exit; its result is the exit cause
    assert "release-rec_cgroup-instance-fn-2" not in files
    sock.close()
    with trio.fail_after(10):
        assert await inst.wait() == 0
    assert inst.cause == "oom"
    assert (tmp_path / "release-rec_cgroup-instance-fn-2").exists()
    assert (tmp_path / "release-rec_cgroup-cold-fn-1").exists()
    assert cold.cause is None


async def test_attach_failure_fails_the_start_and_kills_the_child(layered: Launcher, tmp_path: Path) -> None:
    with trio.fail_after(30):
        with pytest.raises(LauncherError, match=r"attaching cold pid .* PermissionError: attach refused"):
            await layered.spawn(
                ["sleep", "30"],
                {"PATH": "/usr/bin:/bin"},
                sandbox=sandbox(tmp_path, **{"test.fail_attach": "1"}),
                info=info("cold", "x"),
            )
        seed = await layered.fork_seed(
            entry=LOAD, payload={}, sandbox=sandbox(tmp_path), info=info("seed", "s")
        )
        ours, theirs = socket.socketpair()
        with pytest.raises(LauncherError, match="attaching instance"):
            await seed.fork_instance(
                entry="x:y",
                payload={},
                channel_fd=theirs.fileno(),
                sandbox=sandbox(tmp_path, **{"test.fail_attach": "1"}),
                info=info("instance", "i"),
            )
        theirs.close()
        assert (await trio.to_thread.run_sync(ours.recv, 10)) == b""  # the child is gone
        ours.close()
    # released even though it never ran
    assert (tmp_path / "release-rec_cgroup-cold-x").exists()
    assert (tmp_path / "release-rec_cgroup-instance-i").exists()
    assert alive(seed.pid)


async def test_launcher_refuses_mismatched_layers() -> None:
    from . import layers

    with trio.fail_after(30), pytest.raises(LauncherError, match="loaded isolation layers"):
        await Launcher.start(
            plugins=False, layers=[layers.cgroup_layer()], env={"PYTHONPATH": os.pathsep.join(sys.path)}
        )
