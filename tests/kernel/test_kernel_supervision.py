"""Instance supervision with real processes: exit callbacks, the shared reaper, the
fallback supervising task, and ``WorkerProcess.on_exit``.

In-process tests drive the real :class:`~kernel.instances.InstanceFactory` (and the
real ``Kernel.instance_exited``) with a real launcher (``Launcher.start``) or plain
``trio.lowlevel.open_process``; the worker is a tiny script speaking ``kernel.protocol``.
The daemon test checks the same through ``noslate serve`` and its scheduler.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from kernel.daemon import Kernel
from kernel.instances import LINGER, Instance, InstanceFactory
from kernel.interfaces import FunctionVersion, SpawnInfo, StartRequest
from kernel.launcher.client import Launcher
from kernel.localprocess import LocalProcess
from kernel.metrics import Metrics
from kernel.profile import parse_profile

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}

# argv: FD MODE [ARG]; modes: exit CODE (after 0.3 s) | linger (ignores SIGTERM, closes
# its channel, keeps running) | close-exit CODE (closes its channel, exits 0.3 s later)
# | silent (no Hello, keeps running)
WORKER = r"""
import os, signal, socket, sys, time
from kernel import protocol as p
fd, mode = int(sys.argv[1]), sys.argv[2]
sock = socket.socket(fileno=fd)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "silent":  # never says Hello
    time.sleep(60)
sock.sendall(p.encode(p.Hello(os.getpid(), "script", {})))
time.sleep(0.3)
if mode == "exit":
    os._exit(int(sys.argv[3]))
sock.shutdown(socket.SHUT_RDWR)
sock.close()
if mode == "close-exit":
    time.sleep(0.3)
    os._exit(int(sys.argv[3]))
time.sleep(60)
os._exit(0)
"""


class ScriptRuntime:
    """Starts WORKER through the launcher, or (``launcher=None``) with open_process."""

    def __init__(self, launcher: Launcher | None) -> None:
        self.launcher = launcher
        self.args: list[str] = []
        self.pids: list[int] = []
        self.serving = False
        """Mark started processes ``serving`` (like an adopted warmfork spare)."""

    async def start(self, request: StartRequest) -> Any:
        fd = request.channel_fd
        if self.launcher is not None:
            argv = [sys.executable, "-c", WORKER, "3", *self.args]
            info = SpawnInfo(request.version.name, request.version.version, request.instance, request.role)
            proc: Any = await self.launcher.spawn(
                argv, ENV, pass_fds={3: fd}, sandbox=request.sandbox, info=info
            )
        else:
            argv = [sys.executable, "-c", WORKER, str(fd), *self.args]
            proc = LocalProcess(await trio.lowlevel.open_process(argv, env=ENV, pass_fds=(fd,)))
        self.pids.append(proc.pid)
        if self.serving:
            proc.serving = True
        return proc


class Host:
    """The parts of the daemon's Kernel the factory uses; exits go through the real
    ``Kernel.instance_exited`` (which forgets the instance) and are recorded."""

    def __init__(self, runtime: ScriptRuntime, launcher: Launcher | None) -> None:
        self.hooks = SimpleNamespace(sandbox_contribute=lambda **kw: None)
        self.metrics = Metrics()
        self.launcher = launcher
        self.scheduler = None
        self.factory: InstanceFactory | None = None
        self.exits: list[tuple[str, str, float]] = []
        self.lines: list[str] = []
        self._runtime = runtime
        self.exited = trio.Event()

    def runtime(self, name: str) -> Any:
        return self._runtime if name == "script" else None

    def log(self, function: str, level: str, message: str, instance: str = "", *, limit: bool = True) -> None:
        self.lines.append(message)

    def instance_exited(self, inst: Any, cause: str) -> None:
        self.exits.append((inst.id, cause, trio.current_time()))
        Kernel.instance_exited(self, inst, cause)  # type: ignore[arg-type]
        self.exited.set()

    def exit_count(self, cause: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "noslate_instance_exits_total", {"function": "sup", "cause": cause}
        )
        return value or 0.0


VERSION = FunctionVersion(
    parse_profile({"name": "sup", "runtime": "script", "worker": {"disableSeed": True}}),
    "sha256:supervision",
    b"",
)


def gone(pid: int) -> bool:
    """No process (not even a zombie) has ``pid``."""
    return not os.path.exists(f"/proc/{pid}")


async def wait_gone(pid: int, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not gone(pid):
            await trio.sleep(0.02)


@contextlib.asynccontextmanager
async def harness(*, launcher: bool) -> AsyncIterator[tuple[Host, InstanceFactory, ScriptRuntime]]:
    stack = contextlib.AsyncExitStack()
    async with stack:
        lch = None
        if launcher:
            with trio.fail_after(30):
                lch = await Launcher.start(plugins=False, env={"PYTHONPATH": str(ROOT)})
            stack.push_async_exit(lch.__aexit__)
        runtime = ScriptRuntime(lch)
        host = Host(runtime, lch)
        try:
            async with trio.open_nursery() as nursery:
                host.factory = InstanceFactory(host, nursery)
                yield host, host.factory, runtime
                nursery.cancel_scope.cancel()
        finally:
            for pid in runtime.pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


async def start(factory: InstanceFactory, runtime: ScriptRuntime, *args: str) -> Instance:
    runtime.args = list(args)
    with trio.fail_after(20):
        inst = await factory.start(VERSION)
    assert inst.state == "ready" and inst.id in factory.live
    return inst


async def wait_exited(inst: Instance, timeout: float) -> None:
    with trio.fail_after(timeout):
        await inst.exited.wait()


# ---- (1) exits on its own: reported once, forgotten, reaped -------------------------


@pytest.mark.parametrize("launcher", [True, False], ids=["launcher", "fallback-task"])
async def test_own_exit_is_reported_once_and_forgotten(launcher: bool) -> None:
    async with harness(launcher=launcher) as (host, factory, runtime):
        inst = await start(factory, runtime, "exit", "7")
        pid = inst.pid
        assert not gone(pid)
        assert inst.channel is not None and inst.channel.pid == pid
        await wait_exited(inst, 10)
        assert inst.exit_cause == "exit 7" and inst.exit_status == 7
        assert inst.state == "stopped"
        assert inst.id not in factory.live
        await wait_gone(pid)  # reaped: no zombie left behind
        await trio.sleep(0.5)  # a second report (channel EOF, reaper) would land by now
        assert [(i, c) for i, c, _ in host.exits] == [(inst.id, "exit 7")]
        assert host.exit_count("exit") == 1
        assert sum(f"{inst.id} of function sup exited: exit 7" in m for m in host.lines) == 1
        assert not factory._lingering


async def test_channel_closing_first_then_exit_is_not_killed() -> None:
    """EOF before the exit (the usual order): the reaper waits, the real cause wins."""
    async with harness(launcher=True) as (host, factory, runtime):
        inst = await start(factory, runtime, "close-exit", "5")
        await wait_exited(inst, 10)
        assert inst.exit_cause == "exit 5", inst.exit_cause
        await wait_gone(inst.pid)
        with trio.fail_after(2):
            while factory._reaping:
                await trio.sleep(0.05)
        assert not factory._lingering
        assert [c for _, c, _ in host.exits] == ["exit 5"]


# ---- (2) closes its channel, ignores SIGTERM, keeps running: SIGKILLed -------------


async def test_lingering_instances_share_one_reaper_and_are_killed() -> None:
    async with harness(launcher=True) as (host, factory, runtime):
        insts = [await start(factory, runtime, "linger") for _ in range(2)]
        closed_at = []
        with trio.fail_after(10):
            for inst in insts:
                assert inst.channel is not None
                await inst.channel.closed.wait()
                closed_at.append(trio.current_time())
        await trio.sleep(LINGER / 2)
        # still running within the grace period, watched by one shared reaper task
        assert all(not i.exited.is_set() and not gone(i.pid) for i in insts)
        assert factory._reaping and set(factory._lingering) == set(insts)
        reapers = [t for t in factory.nursery.child_tasks if "_reap_lingering" in t.name]
        assert len(reapers) == 1, [t.name for t in factory.nursery.child_tasks]
        for inst, t0 in zip(insts, closed_at, strict=True):
            await wait_exited(inst, LINGER + 2)
            assert trio.current_time() - t0 <= LINGER + 2
            assert inst.exit_cause == "killed by SIGKILL", inst.exit_cause
            await wait_gone(inst.pid, 2)
            assert inst.id not in factory.live
        assert sorted(c for _, c, _ in host.exits) == ["killed by SIGKILL"] * 2
        assert host.exit_count("killed") == 2
        with trio.fail_after(2):
            while factory._reaping:
                await trio.sleep(0.05)


# ---- (3) the fallback supervising task (a process without on_exit) ----------------


async def test_fallback_task_kills_a_lingering_process() -> None:
    """Reachable when a runtime starts processes itself (no launcher): the daemon always
    starts one, so only third-party/test runtimes returning a plain process get here."""
    async with harness(launcher=False) as (host, factory, runtime):
        inst = await start(factory, runtime, "linger")
        assert not hasattr(inst.process, "on_exit")
        assert inst.channel is not None
        with trio.fail_after(10):
            await inst.channel.closed.wait()
        t0 = trio.current_time()
        await trio.sleep(LINGER / 2)
        assert not inst.exited.is_set() and not gone(inst.pid)
        assert not factory._lingering  # the per-instance task does it, not the reaper
        await wait_exited(inst, LINGER + 2)
        assert trio.current_time() - t0 <= LINGER + 2
        assert inst.exit_cause == "killed by SIGKILL"
        await wait_gone(inst.pid, 2)
        assert [c for _, c, _ in host.exits] == ["killed by SIGKILL"]
        assert inst.id not in factory.live


# ---- (4) WorkerProcess.on_exit ----------------------------------------------------


async def test_on_exit_callbacks_fire_before_and_after_the_exit() -> None:
    with trio.fail_after(30):
        launcher = await Launcher.start(plugins=False)
    async with launcher:
        with trio.fail_after(10):
            proc = await launcher.spawn([sys.executable, "-c", "import os; os._exit(4)"], ENV)
        calls: list[str] = []

        def boom() -> None:
            calls.append("boom")
            raise RuntimeError("a failing callback must not stop the others")

        proc.on_exit(boom)
        proc.on_exit(lambda: calls.append(f"before {proc.returncode}"))
        with trio.fail_after(10):
            assert await proc.wait() == 4
        assert calls == ["boom", "before 4"]
        proc.on_exit(lambda: calls.append(f"after {proc.returncode}"))  # runs at once
        assert calls == ["boom", "before 4", "after 4"]
        await wait_gone(proc.pid)
        assert calls == ["boom", "before 4", "after 4"]  # each ran exactly once


async def test_on_exit_fires_when_the_launcher_dies() -> None:
    with trio.fail_after(30):
        launcher = await Launcher.start(plugins=False)
    async with launcher:
        with trio.fail_after(10):
            proc = await launcher.spawn([sys.executable, "-c", "import time; time.sleep(60)"], ENV)
        fired: list[str | None] = []
        proc.on_exit(lambda: fired.append(proc.cause))
        launcher.process.kill()
        with trio.fail_after(10):
            await proc.wait()
        assert fired == ["launcher-exited"]
        await wait_gone(proc.pid)  # the launcher's children die with it
        proc.on_exit(lambda: fired.append("late"))
        assert fired == ["launcher-exited", "late"]


# ---- through the daemon and its scheduler -----------------------------------------

CRASH = """
import os

def handle(req, body, host):
    if req["url"].endswith("/die"):
        os._exit(9)
    return 200, [["content-type", "text/plain"]], [str(os.getpid()).encode()]
"""


def test_daemon_forgets_an_instance_that_exited(daemon: Any) -> None:
    daemon.deploy("crash", CRASH, {"runtime": "pytest"}, filename="w.py")
    r = daemon.request("crash", "/")
    assert r.status_code == 200, r.text
    pid = int(r.text)
    listed = daemon.control("GET", "/v1/instances?function=crash").json()["instances"]
    assert [i["pid"] for i in listed] == [pid]
    assert daemon.request("crash", "/die").status_code == 502
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = daemon.control("GET", "/v1/instances?function=crash").json()["instances"]
        if not listed and gone(pid):
            break
        time.sleep(0.05)
    assert listed == [] and gone(pid), (listed, daemon.stderr())
    time.sleep(0.5)
    exits = [line for line in daemon.logs("crash") if "exited: exit 9" in line["message"]]
    assert len(exits) == 1, daemon.logs("crash")
    metrics = daemon.control("GET", "/metrics").text
    assert re.search(r'noslate_instance_exits_total\{cause="exit",function="crash"\} 1\.0', metrics), [
        line for line in metrics.splitlines() if "instance_exits" in line
    ]
    r = daemon.request("crash", "/")  # the scheduler starts a new instance
    assert r.status_code == 200 and int(r.text) != pid


# ---- (5) a process the starter vouches for (``serving``): no wait for its Hello --------

SERVING = FunctionVersion(
    parse_profile(
        {"name": "sup", "runtime": "script", "worker": {"disableSeed": True, "initializationTimeout": 500}}
    ),
    "sha256:serving",
    b"",
)


async def test_a_serving_process_is_ready_at_once_and_killed_if_it_never_says_hello() -> None:
    async with harness(launcher=True) as (host, factory, runtime):
        runtime.serving = True
        runtime.args = ["silent"]
        with trio.fail_after(5):
            inst = await factory.start(SERVING)
        assert inst.state == "ready" and inst.channel is not None
        assert not inst.channel.hello_received.is_set()
        assert inst in factory._hello_due
        await wait_exited(inst, 3)
        assert inst.exit_cause == "start-timeout", inst.exit_cause
        assert any("did not start within 0.5 s" in line for line in host.lines), host.lines
        runtime.args = ["exit", "0"]
        with trio.fail_after(5):
            good = await factory.start(SERVING)
            assert good.channel is not None
            await good.channel.hello_received.wait()
        assert good.pid == good.channel.pid == runtime.pids[-1]
        assert good not in factory._hello_due
        await wait_exited(good, 3)
        assert good.exit_cause == "exit 0"
