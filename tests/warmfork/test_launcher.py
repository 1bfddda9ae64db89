"""The launcher process through its trio client: spawn, fork, kill, exit status, fds."""

from __future__ import annotations

import signal
import socket
import sys

import pytest
import trio

from kernel.launcher.client import Launcher, LauncherError, SeedError

from .conftest import ENTRIES, ENV, LOAD, alive, fd_targets, fork, read_json_line, socket_inode


async def test_spawn_gets_exact_env_and_only_passed_fds(launcher: Launcher) -> None:
    ours, theirs = socket.socketpair()
    with trio.fail_after(10):
        proc = await launcher.spawn(
            [sys.executable, "-m", ENTRIES, "5"], {**ENV, "ONLY": "this"}, pass_fds={5: theirs.fileno()}
        )
    theirs.close()
    sock = trio.socket.from_stdlib_socket(ours)
    facts = await read_json_line(sock)
    assert facts["pid"] == proc.pid
    assert facts["ppid"] == launcher.pid
    assert facts["fds"] == [0, 1, 2, 5]
    env = {k: v for k, v in facts["env"].items() if k != "LC_CTYPE"}  # Python's locale coercion
    assert env == {**ENV, "ONLY": "this"}
    sock.close()
    with trio.fail_after(10):
        assert await proc.wait() == 0
    assert not alive(proc.pid)


async def test_spawn_reports_exit_status_and_kill(launcher: Launcher) -> None:
    with trio.fail_after(10):
        seven = await launcher.spawn(["sh", "-c", "exit 7"], {"PATH": "/usr/bin:/bin"})
        sleeper = await launcher.spawn(["sleep", "30"], {"PATH": "/usr/bin:/bin"})
        assert await seven.wait() == 7
        assert sleeper.alive
        sleeper.kill(signal.SIGTERM)
        assert await sleeper.wait() == -signal.SIGTERM
    assert sleeper.status is not None and sleeper.cause is None


async def test_spawn_failures_are_reported_before_exec(launcher: Launcher) -> None:
    with trio.fail_after(10):
        with pytest.raises(LauncherError, match="not found on PATH"):
            await launcher.spawn(["no-such-program-xyz"], {"PATH": "/usr/bin"})
        with pytest.raises(LauncherError, match="exec: PermissionError"):
            await launcher.spawn(["/tmp"], {})
        # the launcher still works afterwards
        ok = await launcher.spawn(["true"], {"PATH": "/usr/bin:/bin"})
        assert await ok.wait() == 0


async def test_instances_hold_only_their_own_fds(launcher: Launcher) -> None:
    with trio.fail_after(30):
        seed = await launcher.fork_seed(entry=LOAD, payload={"open_file": True})
        a, facts_a, sock_a = await fork(seed)
        b, facts_b, sock_b = await fork(seed)
    keep_fd = facts_a["keep_fd"]
    # seen from inside and from /proc: stdio, the channel, and what load() opened
    assert facts_a["fds"] == sorted({0, 1, 2, facts_a["channel"], keep_fd})
    inside = fd_targets(b.pid)
    assert set(inside) == {0, 1, 2, facts_b["channel"], keep_fd}
    assert inside[keep_fd] == "/dev/null"
    # neither the seed nor the launcher keeps an instance's channel open
    for pid in (seed.pid, launcher.pid):
        held = set(fd_targets(pid).values())
        assert socket_inode(sock_a) not in held
    # the seed holds exactly one socket: its control connection
    seed_sockets = [t for t in fd_targets(seed.pid).values() if t.startswith("socket:")]
    assert len(seed_sockets) == 1
    for sock in (sock_a, sock_b):
        sock.close()
    with trio.fail_after(10):
        assert await a.wait() == 0
        assert await b.wait() == 0


async def test_instances_get_fresh_randomness_and_identity(launcher: Launcher) -> None:
    with trio.fail_after(30):
        seed = await launcher.fork_seed(entry=LOAD, payload={})
        results = [await fork(seed, {"n": i}) for i in range(5)]
    facts = [f for _p, f, _s in results]
    assert len({f["pid"] for f in facts}) == 5
    assert {f["ppid"] for f in facts} == {seed.pid}
    assert len({f["random"] for f in facts}) == 5, "instances share a PRNG sequence"
    assert len({f["urandom"] for f in facts}) == 5
    # what the seed drew during init is shared (documented): only post-fork draws differ
    assert len({f["drawn_in_seed"] for f in facts}) == 1
    assert [f["payload"]["n"] for f in facts] == list(range(5))
    for proc, _f, sock in results:
        sock.close()
        with trio.fail_after(10):
            assert await proc.wait() == 0


async def test_seed_init_error_is_the_users_error(launcher: Launcher) -> None:
    with trio.fail_after(30), pytest.raises(SeedError) as info:
        await launcher.fork_seed(entry=LOAD, payload={"fail": "ReferenceError: foo is not defined"})
    assert info.value.user_message == "ReferenceError: foo is not defined"
    assert info.value.error_type == "ValueError"
    assert info.value.fatal


async def test_seed_dying_in_init_is_a_start_error(launcher: Launcher) -> None:
    with (
        trio.fail_after(30),
        pytest.raises(LauncherError, match=r"exited \(exit status 3\) before it was ready"),
    ):
        await launcher.fork_seed(entry=LOAD, payload={"crash": True})
    with trio.fail_after(30), pytest.raises(LauncherError, match="seed set-up failed"):
        await launcher.fork_seed(entry=f"{ENTRIES}:missing", payload={})


async def test_killed_seed_takes_its_instances_and_is_reported(launcher: Launcher) -> None:
    with trio.fail_after(30):
        seed = await launcher.fork_seed(entry=LOAD, payload={})
        inst, _facts, sock = await fork(seed)
        seed.kill()
        assert await seed.wait() == -signal.SIGKILL
        # the instance dies with its seed (parent-death signal) and the launcher, as
        # child subreaper, reaps and reports it
        assert await inst.wait() == -signal.SIGKILL
    assert not alive(inst.pid)
    with pytest.raises(LauncherError, match="has exited"):
        await seed.fork_instance(entry="x:y", payload={}, channel_fd=sock.fileno())
    sock.close()


async def test_close_kills_everything(launcher: Launcher) -> None:
    with trio.fail_after(30):
        seed = await launcher.fork_seed(entry=LOAD, payload={})
        inst, _facts, sock = await fork(seed)
        cold = await launcher.spawn(["sleep", "30"], {"PATH": "/usr/bin:/bin"})
        await launcher.aclose()
    for pid in (seed.pid, inst.pid, cold.pid, launcher.pid):
        assert not alive(pid), pid
    assert not inst.alive and inst.cause == "launcher-exited"
    with pytest.raises(LauncherError, match="has exited"):
        await launcher.spawn(["true"], {})
    sock.close()
