"""The warmfork seed manager with a real launcher, real seeds and real instances.

The runtime here is a tiny Python one (``entries``): its seed entry points follow the
runtime_v8 contract, and its cold start is a real fork+exec through the launcher.
"""

from __future__ import annotations

import itertools
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from kernel.errors import DeployError, StartError
from kernel.interfaces import FunctionVersion, StartRequest
from kernel.launcher.client import Launcher
from kernel.profile import parse_profile
from kernel.sandbox import Sandbox
from plugins.warmfork.config import WarmforkConfig
from plugins.warmfork.manager import SeedManager

from .conftest import ENTRIES, ENV, LOAD, SERVE, alive, read_json_line


class PyRuntime:
    """A runtime whose seeds are Python processes (the runtime_v8 contract, minus V8)."""

    name = "pytest"
    seed_entries = (LOAD, SERVE)
    spare_warm_entry = f"{ENTRIES}:warm"

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.cold_starts = 0

    async def start(self, request: StartRequest) -> Any:
        self.cold_starts += 1
        return await self.launcher.spawn(
            [sys.executable, "-m", ENTRIES, "3"],
            ENV,
            pass_fds={3: request.channel_fd},
            sandbox=request.sandbox,
            info=None,
        )


class Hooks:
    def __init__(self) -> None:
        self.contributed: list[str] = []

    def sandbox_contribute(self, sandbox: Sandbox, function: Any, role: str) -> None:
        self.contributed.append(role)


class MiniKernel:
    """The parts of the kernel the plugin uses: launcher, hooks, log, current version."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.hooks = Hooks()
        self.current: dict[str, FunctionVersion] = {}
        self.lines: list[tuple[str, str, str]] = []

    def current_version(self, name: str) -> FunctionVersion | None:
        return self.current.get(name)

    def log(self, function: str, level: str, message: str, instance: str = "") -> None:
        self.lines.append((function, level, message))


_ids = itertools.count(1)


def version(code: str, name: str = "fn") -> FunctionVersion:
    return FunctionVersion(parse_profile({"name": name}), f"sha256:{code}", code.encode())


class Harness:
    def __init__(self, manager: SeedManager, kernel: MiniKernel, runtime: PyRuntime) -> None:
        self.manager, self.kernel, self.runtime = manager, kernel, runtime
        self.starter = manager.starter_for(runtime)

    async def start(self, fv: FunctionVersion) -> tuple[Any, dict[str, Any], Any]:
        ours, theirs = socket.socketpair()
        iid = f"{fv.name}-{next(_ids)}"
        sandbox = Sandbox()
        try:
            with trio.fail_after(20):
                proc = await self.starter.start(StartRequest(fv, iid, theirs.fileno(), sandbox, "instance"))
        finally:
            theirs.close()
        sock = trio.socket.from_stdlib_socket(ours)
        facts = await read_json_line(sock)
        return proc, facts, sock


@pytest.fixture
async def harness(launcher: Launcher, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    options = getattr(request, "param", {})
    manager = SeedManager()
    manager.configure(WarmforkConfig(restart_backoff=0.2, **options))
    kernel = MiniKernel(launcher)
    manager.bind(kernel)
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        yield Harness(manager, kernel, PyRuntime(launcher))
        manager.close()
        nursery.cancel_scope.cancel()


async def test_instances_are_forked_from_one_seed_with_their_own_identity(harness: Harness) -> None:
    fv = version("hello")
    harness.kernel.current["fn"] = fv
    started = [await harness.start(fv) for _ in range(3)]
    facts = [f for _p, f, _s in started]
    seeds = {f["seed_pid"] for f in facts}
    assert len(seeds) == 1 and {f["ppid"] for f in facts} == seeds
    assert harness.runtime.cold_starts == 0
    assert len({f["random"] for f in facts}) == 3
    assert [f["payload"]["instance"] for f in facts] == [p.info.instance for p, _f, _s in started]
    assert facts[0]["code"] == "hello"
    assert harness.kernel.hooks.contributed[0] == "seed"
    for proc, _f, sock in started:
        sock.close()
        with trio.fail_after(10):
            assert await proc.wait() == 0


async def test_a_code_update_replaces_the_seed(harness: Harness) -> None:
    v1, v2 = version("one"), version("two")
    harness.kernel.current["fn"] = v1
    old, old_facts, old_sock = await harness.start(v1)
    harness.kernel.current["fn"] = v2
    _new, new_facts, new_sock = await harness.start(v2)
    assert new_facts["code"] == "two" and old_facts["code"] == "one"
    assert new_facts["seed_pid"] != old_facts["seed_pid"]
    # the old seed stays while its instance still serves in-flight requests ...
    assert alive(old_facts["seed_pid"]) and old.alive
    old_sock.close()
    with trio.fail_after(10):
        await old.wait()
        # ... and goes once its last instance is gone
        while alive(old_facts["seed_pid"]):
            await trio.sleep(0.01)
    assert ("fn", "sha256:one") not in harness.manager.slots
    assert alive(new_facts["seed_pid"])
    new_sock.close()


async def test_a_crashed_seed_falls_back_to_cold_then_restarts(harness: Harness) -> None:
    fv = version("crashy")
    harness.kernel.current["fn"] = fv
    first, facts, sock = await harness.start(fv)
    seed_pid = facts["seed_pid"]
    slot = harness.manager.slots[("fn", fv.version)]
    slot.seed.kill(signal.SIGKILL)
    with trio.fail_after(10):
        assert await first.wait() == -signal.SIGKILL  # instances die with their seed
        while slot.seed is not None:
            await trio.sleep(0.01)
    # during the backoff the function starts cold
    _cold, cold_facts, cold_sock = await harness.start(fv)
    assert harness.runtime.cold_starts == 1
    assert "seed_pid" not in cold_facts and cold_facts["ppid"] == harness.kernel.launcher.pid
    assert any("retry in" in m for _f, level, m in harness.kernel.lines if level == "warning")
    # after the backoff a new seed serves again
    with trio.fail_after(10):
        while True:
            await trio.sleep(0.25)
            _proc, again, again_sock = await harness.start(fv)
            again_sock.close()
            if "seed_pid" in again:
                break
    assert again["seed_pid"] != seed_pid
    assert harness.manager.stats["seed_crashes"] == 1
    for s in (sock, cold_sock):
        s.close()


async def test_seed_init_error_fails_the_deploy_with_the_users_error(harness: Harness) -> None:
    fv = version("throw ReferenceError: nope is not defined")
    with trio.fail_after(20), pytest.raises(DeployError, match="ReferenceError: nope is not defined"):
        await harness.starter.prepare_seed(fv)
    # starting an instance of that version fails the same way, without retrying the seed
    ours, theirs = socket.socketpair()
    with trio.fail_after(20), pytest.raises(StartError, match="nope is not defined") as info:
        await harness.starter.start(StartRequest(fv, "fn-x", theirs.fileno(), Sandbox(), "instance"))
    assert info.value.fatal
    ours.close()
    theirs.close()


@pytest.mark.parametrize("harness", [{"seed_idle_timeout": 0.3}], indirect=True)
async def test_an_idle_seed_is_reclaimed(harness: Harness) -> None:
    fv = version("idle")
    harness.kernel.current["fn"] = fv
    with trio.fail_after(20):
        await harness.starter.prepare_seed(fv)
    seed = harness.manager.slots[("fn", fv.version)].seed
    proc, _facts, sock = await harness.start(fv)
    await trio.sleep(0.6)
    assert alive(seed.pid), "a seed with a live instance is not idle"
    sock.close()
    with trio.fail_after(10):
        await proc.wait()
        await seed.wait()
    assert harness.manager.stats["seeds_reclaimed"] == 1
    # the next start brings a new seed up lazily
    _p, again, again_sock = await harness.start(fv)
    assert again["seed_pid"] != seed.pid
    again_sock.close()


@pytest.mark.parametrize("harness", [{"spares": 1}], indirect=True)
async def test_a_pre_forked_spare_takes_the_next_request(harness: Harness) -> None:
    fv = version("spare")
    harness.kernel.current["fn"] = fv
    _first, facts1, sock1 = await harness.start(fv)
    with trio.fail_after(10):
        while harness.manager.slots[("fn", fv.version)].spare is None:
            await trio.sleep(0.01)
    spare_pid = harness.manager.slots[("fn", fv.version)].spare.process.pid
    second, facts2, sock2 = await harness.start(fv)
    assert harness.manager.stats["spares_used"] == 1
    assert second.pid == spare_pid == facts2["pid"]
    assert facts2["payload"]["instance"].startswith("fn-") and "spare" not in facts2["payload"]["instance"]
    assert facts2["random"] != facts1["random"] and facts2["urandom"] != facts1["urandom"]
    # the runtime's warm-up entry ran in the spare itself, before it was taken
    assert facts2["warmed_in"] == spare_pid and facts1["warmed_in"] is None
    # the spare holds only its channel (the hand-off socket is closed)
    assert facts2["fds"] == sorted({0, 1, 2, facts2["channel"]})
    for s in (sock1, sock2):
        s.close()
    with trio.fail_after(10):
        assert await second.wait() == 0


async def test_a_disposable_function_keeps_a_pool_of_spares(harness: Harness) -> None:
    """``disposable_spares`` (default 2): concurrent starts each take a pre-forked spare,
    and the pool is refilled in the background."""
    profile = parse_profile({"name": "fn", "worker": {"disposable": True}})
    fv = FunctionVersion(profile, "sha256:disposable-pool", b"disposable-pool")
    harness.kernel.current["fn"] = fv
    _first, _facts, sock0 = await harness.start(fv)
    slot = harness.manager.slots[("fn", fv.version)]
    with trio.fail_after(10):
        while len(slot.pool) < 2:
            await trio.sleep(0.01)
    pooled = {spare.process.pid for spare in slot.pool}
    results: list[tuple[Any, dict[str, Any], socket.socket]] = []

    async def one() -> None:
        results.append(await harness.start(fv))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        nursery.start_soon(one)
    assert harness.manager.stats["spares_used"] == 2
    assert {proc.pid for proc, _f, _s in results} == pooled
    assert len({facts["payload"]["instance"] for _p, facts, _s in results}) == 2
    with trio.fail_after(10):
        while len(slot.pool) < 2 or slot.spare_filling:
            await trio.sleep(0.01)
    assert not pooled & {spare.process.pid for spare in slot.pool}
    for _p, _f, s in results:
        s.close()
    sock0.close()
    harness.manager._retire(slot)
    assert not slot.pool
