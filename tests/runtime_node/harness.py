"""Drive a real Node worker over a socketpair, playing the kernel's part of kernel/protocol.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import trio

from kernel import protocol as p
from kernel.interfaces import FunctionVersion, StartRequest
from kernel.profile import parse_profile
from kernel.sandbox import Sandbox
from plugins.runtime_node.config import RuntimeNodeConfig
from plugins.runtime_node.runtime import NodeRuntime

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"


class FakeKernel:
    """What NodeRuntime needs of the kernel: a state dir and a function log."""

    launcher = None

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.lines: list[tuple[str, str, str]] = []

    def log(self, function: str, level: str, message: str, instance: str = "") -> None:
        self.lines.append((function, level, message))


class Reply:
    def __init__(self) -> None:
        self.head: p.Response | None = None
        self.failure: p.Failure | None = None
        self.chunks: list[bytes] = []
        self.done = False

    @property
    def status(self) -> int:
        if self.head is not None:
            return self.head.status
        assert self.failure is not None
        return self.failure.status

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        return json.loads(self.body)


class Worker:
    """The kernel end of one worker's channel. ``calls`` answers Call frames."""

    def __init__(self, proc: Any, sock: socket.socket, calls: Any = None) -> None:
        self.proc = proc
        self.sock = trio.socket.from_stdlib_socket(sock)
        self.buf = p.FrameBuffer()
        self.frames: list[p.Frame] = []
        self.hello: p.Hello | None = None
        self.logs: list[p.Log] = []
        self.calls = calls
        self.rid = 0

    async def _next(self) -> p.Frame | None:
        while not self.frames:
            data = await self.sock.recv(1 << 16)
            if not data:
                return None
            self.frames.extend(self.buf.feed(data))
        return self.frames.pop(0)

    async def wait_hello(self, timeout: float = 20) -> p.Hello:
        with trio.fail_after(timeout):
            while self.hello is None:
                f = await self._next()
                if f is None:
                    raise EOFError(f"worker exited before hello; logs: {self.logs}")
                if isinstance(f, p.Log):
                    self.logs.append(f)
                elif isinstance(f, p.Hello):
                    self.hello = f
        return self.hello

    async def send(self, frame: p.Frame) -> None:
        data = memoryview(p.encode(frame))
        while data:
            data = data[await self.sock.send(data) :]

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
        timeout: float = 20,
    ) -> Reply:
        self.rid += 1
        rid = self.rid
        hdrs = headers or [("x-test", "t1"), ("user-agent", "harness/1")]
        reply = Reply()
        with trio.fail_after(timeout):
            await self.send(p.Request(rid, method, f"http://fn.localhost{path}", hdrs, body is not None))
            credit = p.WINDOW
            chunks = [body[i : i + p.MAX_CHUNK] for i in range(0, len(body or b""), p.MAX_CHUNK)]
            sent_end = body is None
            while True:
                while chunks and credit > 0:
                    await self.send(p.Chunk(rid, chunks.pop(0)))
                    credit -= 1
                if not chunks and not sent_end:
                    await self.send(p.End(rid))
                    sent_end = True
                f = await self._next()
                if f is None:
                    raise EOFError("worker closed the channel")
                match f:
                    case p.Ack(sid=sid, n=n) if sid == rid:
                        credit += n
                    case p.Response(rid=r) if r == rid:
                        reply.head = f
                    case p.Failure(rid=r) if r == rid:
                        reply.failure = f
                    case p.Chunk(sid=sid) if sid == rid:
                        reply.chunks.append(f.data)
                        await self.send(p.Ack(rid, 1))
                    case p.Settled(rid=r) if r == rid:
                        return reply
                    case p.Log():
                        self.logs.append(f)
                    case p.Call():
                        await self.send(await self.calls(f))
                    case _:
                        pass

    def kill(self) -> None:
        self.proc.kill(9)


async def deploy(
    runtime: NodeRuntime, code: bytes, filename: str, profile: dict | None = None
) -> FunctionVersion:
    prof = parse_profile({"name": "fn", "runtime": "nodejs", **(profile or {})})
    artifact = await runtime.prepare(code, filename, prof)
    return FunctionVersion(prof, "sha256:test", artifact)


async def start(
    runtime: NodeRuntime, fv: FunctionVersion, *, snapshot: bool = True, calls: Any = None
) -> Worker:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = await runtime.start(StartRequest(fv, "fn-1", theirs.fileno(), Sandbox()), snapshot=snapshot)
    finally:
        theirs.close()
    worker = Worker(proc, ours, calls)
    await worker.wait_hello()
    return worker


async def get_json(tmp: Path, code: bytes, filename: str, *, snapshot: bool = True) -> Any:
    """Deploy ``code`` on a fresh runtime, start one worker, GET / and return its JSON."""
    runtime, _ = make_runtime(tmp)
    fv = await deploy(runtime, code, filename)
    worker = await start(runtime, fv, snapshot=snapshot)
    try:
        return (await worker.request("GET", "/")).json()
    finally:
        worker.kill()


def make_runtime(tmp: Path, **config: Any) -> tuple[NodeRuntime, FakeKernel]:
    kernel = FakeKernel(tmp)
    return NodeRuntime(kernel, RuntimeNodeConfig(**config)), kernel
