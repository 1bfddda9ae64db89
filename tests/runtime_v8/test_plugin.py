"""The plugin's hooks and the runtime's cold and warm starts through the real launcher."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from kernel import protocol as p
from kernel.interfaces import FunctionVersion, StartRequest
from kernel.profile import EnvVar, FunctionProfile, parse_profile
from kernel.sandbox import Sandbox
from plugins.runtime_v8 import plugin
from plugins.runtime_v8.runtime import V8Runtime

HELLO = b'addEventListener("fetch", (e) => e.respondWith(new Response("hi " + noslate.env.WHO)));'


def test_hooks() -> None:
    (spec,) = plugin.noslate_runtimes()
    assert spec.name == "aworker"
    runtime = spec.factory(SimpleNamespace(launcher=None))
    assert runtime.seed_entries == ("plugins.runtime_v8.worker:load", "plugins.runtime_v8.worker:serve")
    assert plugin.noslate_launcher_preload() == ["plugins.runtime_v8.preload"]
    assert plugin.noslate_config_section().name == "runtime_v8"


async def _talk(ours: socket.socket) -> bytes:
    sock = trio.socket.from_stdlib_socket(ours)
    fb = p.FrameBuffer()
    frames: list[p.Frame] = []
    with trio.fail_after(30):
        while not any(isinstance(f, p.Hello) for f in frames):
            frames += fb.feed(await sock.recv(65536))
        await sock.send(p.encode(p.Request(1, "GET", "http://f.localhost/", [], False)))
        while not any(isinstance(f, p.Settled) for f in frames):
            frames += fb.feed(await sock.recv(65536))
    return b"".join(f.data for f in frames if isinstance(f, p.Chunk))


def _version(runtime: V8Runtime, artifact: bytes) -> FunctionVersion:
    profile = FunctionProfile(name="f", environments=[EnvVar("WHO", "there")])
    return FunctionVersion(profile=profile, version="sha256:test", artifact=artifact)


async def _cold_start_answers(launcher: Any) -> None:
    """Cold-start the hello worker (through ``launcher`` when given) and talk to it."""
    runtime = V8Runtime(SimpleNamespace(launcher=launcher))
    fv = _version(runtime, await runtime.prepare(HELLO, "w.js", None))
    ours, theirs = socket.socketpair()
    proc = await runtime.start(StartRequest(fv, "f-1", theirs.fileno(), Sandbox()))
    theirs.close()
    assert await _talk(ours) == b"hi there"
    proc.kill()
    await proc.wait()


async def test_cold_start_without_launcher() -> None:
    await _cold_start_answers(None)


@pytest.fixture
async def launcher():
    client = pytest.importorskip("kernel.launcher.client")
    launcher = await client.Launcher.start(preload=["plugins.runtime_v8.preload"], plugins=False)
    try:
        yield launcher
    finally:
        await launcher.aclose()


async def test_cold_start_through_launcher(launcher) -> None:
    await _cold_start_answers(launcher)


async def test_seed_and_instances_through_launcher(launcher) -> None:
    from kernel.interfaces import SpawnInfo

    runtime = V8Runtime(SimpleNamespace(launcher=launcher))
    fv = _version(runtime, await runtime.prepare(HELLO, "w.js", None))
    seed = await launcher.fork_seed(
        entry=runtime.seed_entries[0],
        payload=runtime.seed_payload(fv, "f-seed"),
        info=SpawnInfo("f", fv.version, "f-seed", "seed"),
    )
    try:
        for i in range(2):
            ours, theirs = socket.socketpair()
            req = StartRequest(fv, f"f-{i}", theirs.fileno(), Sandbox(), role="instance")
            inst = await seed.fork_instance(
                entry=runtime.seed_entries[1], payload=runtime.instance_init(req), channel_fd=theirs.fileno()
            )
            theirs.close()
            assert await _talk(ours) == b"hi there"
            inst.kill()
            await inst.wait()
    finally:
        seed.kill()


async def test_seed_load_error_is_the_users_message(launcher) -> None:
    client = pytest.importorskip("kernel.launcher.client")
    runtime = V8Runtime(SimpleNamespace(launcher=launcher))
    fv = _version(runtime, await runtime.prepare(b'throw new RangeError("bad init")', "w.js", None))
    with pytest.raises(client.SeedError) as info:
        await launcher.fork_seed(entry=runtime.seed_entries[0], payload=runtime.seed_payload(fv, "s"))
    assert "RangeError: bad init" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_only_flags_a_seed_lacks_keep_a_profile_from_being_seeded() -> None:
    from plugins.runtime_v8.config import RuntimeV8Config

    runtime = V8Runtime(SimpleNamespace(), RuntimeV8Config(v8_flags=["--stack-size=900"]))

    def blocker(flags: list[str]) -> str | None:
        return runtime.seed_blocker(parse_profile({"name": "fn", "worker": {"v8Options": flags}}))

    assert blocker([]) is None
    assert blocker(["--single-threaded", "--no-lazy", "--stack-size=900"]) is None  # seeds run with these
    reason = blocker(["--no-lazy", "--no-opt", "--max-lazy"])
    assert reason is not None and "worker.v8Options --no-opt --max-lazy cannot apply" in reason
