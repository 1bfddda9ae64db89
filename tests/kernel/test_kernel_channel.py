"""kernel.channel against a fake worker peer (Python, over a real socketpair)."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
import trio

from kernel import protocol as p
from kernel.channel import Channel, FetchRefused, WorkerFailed, enable_passcred
from kernel.interfaces import KVError, OutboundResponse


class Host:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, int]] = []
        self.calls: list[tuple[str, list]] = []
        self.fetched: list[tuple[p.Fetch, bytes]] = []

    def log(self, level: str, message: str, rid: int = 0) -> None:
        self.lines.append((level, message, rid))

    async def call(self, op: str, args: list) -> object:
        self.calls.append((op, args))
        if op == "kv.get":
            return b"value-of-" + args[1].encode()
        raise KVError("QuotaExceededError", "over quota")

    async def fetch(self, frame: p.Fetch, body):
        data = b""
        if body is not None:
            async for chunk in body:
                data += chunk
        self.fetched.append((frame, data))
        if "refuse" in frame.url:
            raise FetchRefused("TypeError", "refused by policy")

        async def stream():
            for i in range(20):
                yield bytes([i]) * 10000

        return OutboundResponse(200, "OK", [("x", "y")], frame.url, stream())


class Peer:
    """The worker end: a trio socket speaking frames."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.buf = p.FrameBuffer()
        self.pending: list[p.Frame] = []

    async def send(self, frame: p.Frame) -> None:
        data = p.encode(frame)
        while data:
            n = await self.sock.send(data)
            data = data[n:]

    async def recv(self) -> p.Frame:
        while not self.pending:
            data = await self.sock.recv(65536)
            if not data:
                raise EOFError
            self.pending.extend(self.buf.feed(data))
        return self.pending.pop(0)


@pytest.fixture
async def pair(nursery):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    enable_passcred(ours)
    host = Host()
    channel = Channel(trio.socket.from_stdlib_socket(ours), host, name="t-1")
    peer = Peer(trio.socket.from_stdlib_socket(theirs))
    nursery.start_soon(channel.run)
    await peer.send(p.Hello(4242, "fake"))
    with trio.fail_after(5):
        await channel.hello_received.wait()
    return channel, peer, host


async def test_hello_pid_comes_from_credentials(pair):
    channel, _peer, _host = pair
    assert channel.hello.pid == 4242  # what the worker claims
    assert channel.pid == os.getpid()  # what the kernel saw (SCM_CREDENTIALS)


async def test_first_frame_must_be_hello(nursery):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    enable_passcred(ours)
    channel = Channel(trio.socket.from_stdlib_socket(ours), Host())
    nursery.start_soon(channel.run)
    peer = Peer(trio.socket.from_stdlib_socket(theirs))
    await peer.send(p.Log("info", "too early"))
    with trio.fail_after(5):
        await channel.closed.wait()
    assert "hello" in channel.close_reason


async def test_multiplexed_requests_and_streaming_with_window(pair):
    channel, peer, _host = pair
    with trio.fail_after(10):
        a = await channel.request("POST", "http://f.localhost/a", [("x", "1")], True)
        b = await channel.request("GET", "http://f.localhost/b", [], False)
        assert (await peer.recv()).rid == a.rid
        assert (await peer.recv()).url == "http://f.localhost/b"
        # Request body: 20 chunks; the sender must stop at WINDOW until acked.
        sent = trio.Event()

        async def upload():
            await a.send_body(b"z" * (p.MAX_CHUNK * 20))
            await a.end_body()
            sent.set()

        async with trio.open_nursery() as n:
            n.start_soon(upload)
            got = 0
            for _ in range(p.WINDOW):
                f = await peer.recv()
                assert isinstance(f, p.Chunk) and f.sid == a.rid
                got += len(f.data)
            await trio.sleep(0.1)
            assert not peer.pending and not sent.is_set()  # blocked on the window
            while True:
                await peer.send(p.Ack(a.rid, 1))
                f = await peer.recv()
                if isinstance(f, p.End):
                    break
                got += len(f.data)
        assert got == p.MAX_CHUNK * 20
        # Responses interleave; b answers first.
        await peer.send(p.Response(b.rid, 204, [], False))
        await peer.send(p.Response(a.rid, 200, [("content-type", "text/plain")], True))
        assert (await b.response()).status == 204
        assert [c async for c in b.body()] == []
        head = await a.response()
        assert head.headers == [("content-type", "text/plain")]
        received = []

        async def reader():
            async for chunk in a.body():
                received.append(chunk)

        async with trio.open_nursery() as n:
            n.start_soon(reader)
            for i in range(3 * p.WINDOW):
                await peer.send(p.Chunk(a.rid, bytes([i])))
                if i >= p.WINDOW - 1:
                    ack = await peer.recv()
                    assert isinstance(ack, p.Ack) and ack.sid == a.rid
            await peer.send(p.End(a.rid))
        assert received == [bytes([i]) for i in range(3 * p.WINDOW)]


async def test_failure_before_and_after_head(pair):
    channel, peer, host = pair
    with trio.fail_after(5):
        a = await channel.request("GET", "http://f/", [], False)
        await peer.send(p.Failure(a.rid, 500, "uncaught exception", "Error: boom\n    at x.js:1:1"))
        with pytest.raises(WorkerFailed) as info:
            await a.response()
        assert info.value.status == 500
        assert ("error", "Error: boom\n    at x.js:1:1", a.rid) in host.lines
        b = await channel.request("GET", "http://f/", [], False)
        await peer.send(p.Response(b.rid, 200, [], True))
        await peer.send(p.Chunk(b.rid, b"partial"))
        await peer.send(p.Failure(b.rid, 500, "stream failed"))
        await b.response()
        with pytest.raises(WorkerFailed):
            async for _ in b.body():
                pass


async def test_eof_fails_in_flight(pair):
    channel, peer, _host = pair
    with trio.fail_after(5):
        a = await channel.request("GET", "http://f/", [], False)
        peer.sock.close()
        await channel.closed.wait()
        channel.fail_all(502, "the worker instance exited unexpectedly")
        with pytest.raises(WorkerFailed, match="exited"):
            await a.response()
        with pytest.raises(WorkerFailed):
            await channel.request("GET", "http://f/", [], False)


async def test_kernel_closing_the_channel_while_it_reads_is_a_clean_close(nursery):
    """The launcher can report a process exit before the channel reads EOF; the
    instance then closes the channel under the reading task. That must end ``run``
    quietly (it used to raise ClosedResourceError and take the daemon down)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    enable_passcred(ours)
    channel = Channel(trio.socket.from_stdlib_socket(ours), Host(), name="t-2")
    done = trio.Event()

    async def run() -> None:
        await channel.run()
        done.set()

    nursery.start_soon(run)
    peer = Peer(trio.socket.from_stdlib_socket(theirs))
    await peer.send(p.Hello(4242, "fake"))
    with trio.fail_after(5):
        await channel.hello_received.wait()
        await trio.sleep(0.01)  # the reader and the flusher are parked now
        channel.close()
        await done.wait()
    assert channel.closed.is_set()
    with pytest.raises(WorkerFailed):
        await channel.request("GET", "http://f/", [], False)


async def test_cancelled_flusher_is_not_rescheduled_twice():
    """Cancelling the channel's task while a request is queued in the same batch must
    not reschedule the parked flusher a second time (trio asserts on that)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    enable_passcred(ours)
    channel = Channel(trio.socket.from_stdlib_socket(ours), Host(), name="t-3")
    peer = Peer(trio.socket.from_stdlib_socket(theirs))
    with trio.CancelScope() as outer:
        async with trio.open_nursery() as inner:
            inner.start_soon(channel.run)
            await peer.send(p.Hello(4242, "fake"))
            with trio.fail_after(5):
                await channel.hello_received.wait()
            await trio.sleep(0.01)
            inner.cancel_scope.cancel()  # the parked flusher is rescheduled with Cancelled
            with contextlib.suppress(WorkerFailed):
                await channel.send(p.Shutdown(0))  # same batch: must not reschedule it again
    assert not outer.cancelled_caught


async def test_abort_reaches_worker(pair):
    channel, peer, _host = pair
    with trio.fail_after(5):
        a = await channel.request("GET", "http://f/", [], False)
        await peer.recv()
        await a.abort("client disconnected")
        f = await peer.recv()
        assert isinstance(f, p.Abort) and f.sid == a.rid
        assert channel.in_flight == 0


async def test_host_calls(pair):
    _channel, peer, host = pair
    with trio.fail_after(5):
        await peer.send(p.Call(1, "kv.get", ["store", "k"]))
        await peer.send(p.Call(2, "kv.set", ["store", "k", b"v", None]))
        results = {}
        for _ in range(2):
            r = await peer.recv()
            results[r.cid] = r
        assert results[1].ok and results[1].value == b"value-of-k"
        assert not results[2].ok and results[2].error_name == "QuotaExceededError"
        await peer.send(p.Log("warn", "hello", 0))
        await peer.send(p.Call(3, "kv.get", ["s", "x"]))
        await peer.recv()
        assert ("warn", "hello", 0) in host.lines


async def test_fetch_streams_with_window_and_refusal(pair):
    _channel, peer, host = pair
    with trio.fail_after(10):
        await peer.send(p.Fetch(7, "POST", "http://example.com/x", [("a", "b")], True, "follow", 0))
        await peer.send(p.Chunk(-7, b"up"))
        await peer.send(p.End(-7))
        frames = []
        total = 0
        while True:
            f = await peer.recv()
            frames.append(f)
            if isinstance(f, p.Ack):
                continue
            if isinstance(f, p.FetchResponse):
                assert f.status == 200 and f.headers == [("x", "y")]
                continue
            if isinstance(f, p.End):
                break
            assert isinstance(f, p.Chunk) and f.sid == -7
            total += len(f.data)
            await peer.send(p.Ack(-7, 1))
        assert total == 200000
        assert host.fetched[0][1] == b"up"
        await peer.send(p.Fetch(8, "GET", "http://refuse.example/", [], False))
        f = await peer.recv()
        assert isinstance(f, p.FetchError) and f.fid == 8 and "refused" in f.message
