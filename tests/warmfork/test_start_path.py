"""The instance start path's shortcuts keep behaviour: lean launcher, memoised sandboxes,
file-backed ICU data in the zygote, spare warm-up (see docs/warmfork.md)."""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import pytest
import trio

from kernel import protocol as p
from kernel.launcher.client import Launcher
from kernel.launcher.memo import SandboxMemo
from kernel.launcher.plugins import NEEDED, module_hooks, needed_plugins
from kernel.sandbox import Mount, Sandbox, Seccomp, SeccompRule

BASE = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]


def _sandbox(instance: str, cgroup: str) -> dict:
    sb = Sandbox()
    sb.process.title = f"noslate:fn@v#{instance}"
    sb.annotations.update({"noslate.instance": instance, "noslate.role": "instance"})
    sb.mounts.append(Mount("/code", "/srv/code", options=["ro"]))
    sb.linux.cgroupsPath = cgroup
    sb.linux.seccomp = Seccomp(syscalls=[SeccompRule(["ptrace", "mount"], "SCMP_ACT_ERRNO", 1)])
    return sb.to_oci()


def test_memo_builds_what_from_oci_builds_and_reuses_unchanged_parts() -> None:
    memo = SandboxMemo()
    first_raw, second_raw = _sandbox("fn-1", "/a"), _sandbox("fn-2", "/b")
    first, second = memo.build(first_raw), memo.build(second_raw)
    assert first == Sandbox.from_oci(first_raw) and second == Sandbox.from_oci(second_raw)
    assert second.process.title.endswith("#fn-2") and second.linux.cgroupsPath == "/b"
    assert second.annotations["noslate.instance"] == "fn-2"
    assert second.linux.seccomp is first.linux.seccomp  # unchanged: not structured again
    assert second.mounts is first.mounts
    changed = copy.deepcopy(second_raw)
    changed["linux"]["seccomp"]["syscalls"][0]["names"] = ["bpf"]
    assert memo.build(changed).linux.seccomp.syscalls[0].names == ["bpf"]
    with pytest.raises(Exception, match="Sandbox"):  # same error as from_oci
        memo.build({**first_raw, "bogus": 1})


def test_the_launcher_loads_only_plugins_with_launcher_hooks() -> None:
    assert module_hooks("plugins.runtime_v8.plugin") & NEEDED
    assert module_hooks("plugins.isolation_seccomp.plugin") & NEEDED
    assert not module_hooks("plugins.warmfork.plugin") & NEEDED
    data = {"plugins": {"enabled": [*BASE, "isolation_seccomp"]}}
    assert needed_plugins(data) == ["isolation_seccomp", "runtime_v8"]
    # a plugin disabled by its own section stays out
    off = {"plugins": {"enabled": [*BASE, "isolation_seccomp"], "isolation_seccomp": {"enabled": False}}}
    assert needed_plugins(off) == ["runtime_v8"]


async def test_a_launcher_started_from_a_config_reports_its_lean_plugin_set(tmp_path: Path) -> None:
    config = tmp_path / "noslate.toml"
    config.write_text(f"[plugins]\nenabled = {BASE!r}\n".replace("'", '"'))
    with trio.fail_after(60):
        launcher = await Launcher.start(config_path=config)
    async with launcher:
        assert launcher.hello["plugins"] == ["runtime_v8"]
        assert "plugins.runtime_v8.preload" in launcher.hello["preload"]
        assert launcher.hello["layers"] == []


SCRIPT = b"""addEventListener('fetch', e => e.respondWith(new Response(
  new Intl.NumberFormat('en-IN').format(1234567.8) + ' ' + '\\u00e9'.normalize('NFD').length)))"""


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_icu_data_is_shared_file_backed_and_works_in_instances() -> None:
    init = {"function": "icu", "version": "v", "instance": "icu-seed", "env": {}, "log_level": "info"}
    with trio.fail_after(60):
        launcher = await Launcher.start(preload=["plugins.runtime_v8.preload"], plugins=False)
    async with launcher:
        assert "memfd:noslate-icu" in _maps(launcher.pid)
        with trio.fail_after(60):
            seed = await launcher.fork_seed(
                entry="plugins.runtime_v8.worker:load", payload={"artifact": SCRIPT, "init": init}
            )
        ours, theirs = socket.socketpair()
        try:
            with trio.fail_after(20):
                proc = await seed.fork_instance(
                    entry="plugins.runtime_v8.worker:serve",
                    payload={**init, "instance": "icu-1"},
                    channel_fd=theirs.fileno(),
                )
        finally:
            theirs.close()
        sock = trio.socket.from_stdlib_socket(ours)
        frames = p.FrameBuffer()
        body = b""
        with trio.fail_after(20):
            await sock.send(p.encode(p.Request(1, "GET", "http://icu/", [], False)))
            done = False
            while not done:
                data = await sock.recv(65536)
                assert data, "the instance closed its channel"
                for f in frames.feed(data):
                    if isinstance(f, p.Chunk):
                        body += f.data
                    done = done or isinstance(f, p.End | p.Failure)
        assert body == b"12,34,567.8 2"
        assert "memfd:noslate-icu" in _maps(proc.pid)
        sock.close()
        seed.kill()
        with trio.fail_after(10):
            await proc.wait()
