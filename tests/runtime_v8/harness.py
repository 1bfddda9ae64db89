"""Drive a real runtime_v8 worker process over a socketpair, speaking kernel/protocol.py.

The harness plays the kernel's part: it sends Request/Chunk/End frames with the
WINDOW/Ack flow control, collects responses, answers Call frames with the real
kv_lru backend and Fetch frames with a small in-test responder.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from kernel import protocol as p
from kernel.jsprepare import prepare

ROOT = Path(__file__).resolve().parents[2]
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)}


class Reply:
    """What came back for one request."""

    def __init__(self, rid: int) -> None:
        self.rid = rid
        self.head: p.Response | None = None
        self.chunks: list[bytes] = []
        self.ended = False
        self.aborted: p.Abort | None = None
        self.failure: p.Failure | None = None
        self.settled = trio.Event()
        self.done = trio.Event()
        self.body_event = trio.Event()

    @property
    def status(self) -> int:
        if self.failure is not None and self.head is None:
            return self.failure.status
        assert self.head is not None
        return self.head.status

    @property
    def headers(self) -> dict[str, str]:
        assert self.head is not None
        out: dict[str, str] = {}
        for k, v in self.head.headers:
            out[k] = f"{out[k]}, {v}" if k in out else v
        return out

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class Worker:
    """A worker process and the kernel end of its channel."""

    def __init__(self, proc: trio.Process, sock: trio.socket.SocketType) -> None:
        self.proc = proc
        self.sock = sock
        self.hello: p.Hello | None = None
        self.replies: dict[int, Reply] = {}
        self.logs: list[p.Log] = []
        self.calls: list[p.Call] = []
        self.fetches: list[p.Fetch] = []
        self.acks: dict[int, int] = {}
        self.ack_event = trio.Event()
        self.sub_bodies: dict[int, list[bytes]] = {}
        self.sub_done: dict[int, trio.Event] = {}
        self.kv: Any = None
        self.namespace = "test"
        self.fetch_handler: Callable[[Worker, p.Fetch, bytes], Any] | None = None
        self.frames = p.FrameBuffer()
        self._next_rid = 1
        self._hello = trio.Event()
        self.closed = trio.Event()
        self._send_lock = trio.Lock()

    async def _send_raw(self, data: bytes) -> None:
        async with self._send_lock:
            view = memoryview(data)
            while view:
                n = await self.sock.send(view)
                view = view[n:]

    async def write(self, frame: p.Frame) -> None:
        await self._send_raw(p.encode(frame))

    async def reader(self) -> None:
        try:
            while True:
                try:
                    data = await self.sock.recv(1 << 20)
                except OSError:  # reset: the worker exited with frames unread
                    break
                if not data:
                    break
                for frame in self.frames.feed(data):
                    await self._on_frame(frame)
        finally:
            self.closed.set()
            for r in self.replies.values():
                r.done.set()
                r.settled.set()
                r.body_event.set()

    async def _on_frame(self, f: p.Frame) -> None:
        if isinstance(f, p.Hello):
            self.hello = f
            self._hello.set()
        elif isinstance(f, p.Response):
            r = self.replies[f.rid]
            r.head = f
            if not f.has_body:
                r.done.set()
        elif isinstance(f, p.Chunk):
            if f.sid > 0:
                r = self.replies[f.sid]
                r.chunks.append(f.data)
                r.body_event.set()
                r.body_event = trio.Event()
                if getattr(r, "auto_ack", True):
                    await self.write(p.Ack(f.sid, 1))
            else:
                self.sub_bodies.setdefault(-f.sid, []).append(f.data)
                await self.write(p.Ack(f.sid, 1))
        elif isinstance(f, p.End):
            if f.sid > 0:
                self.replies[f.sid].ended = True
                self.replies[f.sid].done.set()
            else:
                self.sub_done.setdefault(-f.sid, trio.Event()).set()
        elif isinstance(f, p.Abort):
            if f.sid > 0:
                self.replies[f.sid].aborted = f
                self.replies[f.sid].done.set()
            else:
                self.sub_done.setdefault(-f.sid, trio.Event()).set()
        elif isinstance(f, p.Failure):
            r = self.replies[f.rid]
            r.failure = f
            r.done.set()
        elif isinstance(f, p.Settled):
            self.replies[f.rid].settled.set()
        elif isinstance(f, p.Log):
            self.logs.append(f)
        elif isinstance(f, p.Ack):
            self.acks[f.sid] = self.acks.get(f.sid, 0) + f.n
            self.ack_event.set()
            self.ack_event = trio.Event()
        elif isinstance(f, p.Call):
            self.calls.append(f)
            await self._answer_call(f)
        elif isinstance(f, p.Fetch):
            self.fetches.append(f)
            self.sub_done.setdefault(f.fid, trio.Event())
            if not f.has_body:
                self.sub_done[f.fid].set()
            self._nursery.start_soon(self._answer_fetch, f)

    async def _answer_call(self, f: p.Call) -> None:
        from kernel.interfaces import KVError

        try:
            value = await self.kv.call(self.namespace, f.op, f.args)
            await self.write(p.Result(f.cid, True, value))
        except KVError as exc:
            await self.write(p.Result(f.cid, False, None, exc.name, str(exc)))

    async def _answer_fetch(self, f: p.Fetch) -> None:
        await self.sub_done[f.fid].wait()
        body = b"".join(self.sub_bodies.get(f.fid, []))
        if self.fetch_handler is None:
            await self.write(p.FetchError(f.fid, "TypeError", "no outbound network in this test"))
            return
        status, headers, resp_body = self.fetch_handler(self, f, body)
        await self.write(p.FetchResponse(f.fid, status, "OK", headers, f.url, bool(resp_body)))
        if resp_body:
            for i in range(0, len(resp_body), p.MAX_CHUNK):
                await self.write(p.Chunk(-f.fid, resp_body[i : i + p.MAX_CHUNK]))
            await self.write(p.End(-f.fid))

    # ---- requests ---------------------------------------------------------------

    async def start_request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        host: str = "fn.localhost",
    ) -> Reply:
        rid = self._next_rid
        self._next_rid += 1
        reply = Reply(rid)
        self.replies[rid] = reply
        hdrs = list(headers or [("x-test", "t1"), ("user-agent", "harness/1")])
        await self.write(p.Request(rid, method, f"http://{host}{path}", hdrs, body is not None))
        if body is not None:
            self._nursery.start_soon(self.send_body, rid, body)
        return reply

    async def send_body(self, sid: int, body: bytes) -> None:
        """Send ``body`` as Chunk frames, never more than WINDOW unacknowledged."""
        for sent, i in enumerate(range(0, len(body), p.MAX_CHUNK)):
            while sent - self.acks.get(sid, 0) >= p.WINDOW:
                await self.ack_event.wait()
            await self.write(p.Chunk(sid, body[i : i + p.MAX_CHUNK]))
        await self.write(p.End(sid))

    async def request(self, method: str = "GET", path: str = "/", **kw: Any) -> Reply:
        reply = await self.start_request(method, path, **kw)
        with trio.fail_after(15):
            await reply.done.wait()
            await reply.settled.wait()
        return reply

    async def shutdown(self, grace_ms: int = 1000) -> int:
        await self.write(p.Shutdown(grace_ms))
        with trio.fail_after(10):
            return await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


async def prepared(code: str, filename: str = "worker.js") -> bytes:
    return await prepare(code.encode(), filename)


async def start_worker(
    nursery: trio.Nursery,
    code: str | bytes,
    filename: str = "worker.js",
    *,
    env: dict[str, str] | None = None,
    kv: Any = None,
    raw: bool = False,
    log_level: str = "debug",
) -> Worker:
    """Prepare ``code`` and cold-start a worker (python -m plugins.runtime_v8.worker)."""
    artifact = code if isinstance(code, bytes) else (code.encode() if raw else await prepared(code, filename))
    init = {
        "function": "fn",
        "version": "v1",
        "instance": "fn-1",
        "env": env or {},
        "log_level": log_level,
        "artifact_b64": base64.b64encode(artifact).decode(),
    }
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    rfd, wfd = os.pipe()
    argv = [
        sys.executable,
        "-m",
        "plugins.runtime_v8.worker",
        "--fd",
        str(theirs.fileno()),
        "--init",
        f"fd:{rfd}",
    ]
    proc = await trio.lowlevel.open_process(
        argv,
        pass_fds=(theirs.fileno(), rfd),
        env=CLEAN_ENV,
        cwd=str(ROOT),
        stdin=None,
    )
    theirs.close()
    os.close(rfd)
    payload = json.dumps(init).encode()
    async with trio.lowlevel.FdStream(wfd) as pipe:
        await pipe.send_all(payload)
    w = Worker(proc, trio.socket.from_stdlib_socket(ours))
    if kv is None:
        from plugins.kv_lru.backend import LRUBackend

        kv = LRUBackend()
    w.kv = kv
    w._nursery = nursery
    nursery.start_soon(w.reader)
    with trio.fail_after(30):
        while not w._hello.is_set() and not w.closed.is_set():
            await trio.sleep(0.005)
    if w.hello is None:
        logs = "; ".join(log.message for log in w.logs)
        raise RuntimeError(f"worker exited before Hello: {logs}")
    return w
