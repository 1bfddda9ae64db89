"""The daemon's end of one worker's socketpair (``kernel.protocol`` frames).

A :class:`Channel` multiplexes inbound requests (:class:`Exchange`, one per ``rid``),
streams bodies both ways under the WINDOW/Ack flow control, answers host calls
(``Call`` -> KV backend) and performs subrequests (``Fetch`` -> outbound hooks and
performer) through its :class:`ChannelHost`. The worker's host pid comes from the
SCM_CREDENTIALS of its ``Hello`` (correct inside pid namespaces).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import msgspec
import trio

from kernel import protocol as p
from kernel.httpcheck import end_to_end, head_problem
from kernel.interfaces import KVError, OutboundResponse

log = logging.getLogger("noslate.channel")
_CREDS = struct.Struct("iII")
RECV_SIZE = 256 * 1024
HIGH_WATER = 1024 * 1024
"""Bytes queued for the worker above which senders wait for the flusher."""


class WorkerFailed(Exception):
    """A request failed in the worker or with it; ``message`` is safe to show clients."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class FetchRefused(Exception):
    """A subrequest was refused or failed; the worker's ``fetch()`` rejects with it."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(message)


class ChannelHost(Protocol):
    """What a channel asks of its instance (logs, host calls, subrequests)."""

    def log(self, level: str, message: str, rid: int = 0) -> None: ...

    async def call(self, op: str, args: list[Any]) -> Any: ...

    async def fetch(self, frame: p.Fetch, body: AsyncIterator[bytes] | None) -> OutboundResponse: ...


def enable_passcred(sock: socket.socket) -> None:
    """Ask the kernel to attach the peer's credentials (do it before the peer writes)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)


class _Inbox:
    """Received body chunks of one stream, bounded by the flow-control window.

    A deque plus a one-shot wake-up event: cheaper per request than a memory channel,
    and it lets the data plane see whether a whole body already arrived.
    """

    __slots__ = ("_waiter", "chunks", "ended", "error")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.error: WorkerFailed | None = None
        self.ended = False
        self._waiter: trio.Event | None = None

    def put(self, data: bytes) -> bool:
        if self.ended or len(self.chunks) >= p.WINDOW * 2:
            return False
        self.chunks.append(data)
        self._wake()
        return True

    def end(self, error: WorkerFailed | None = None) -> None:
        if not self.ended:
            self.ended = True
            self.error = error
            self._wake()

    @property
    def complete(self) -> bool:
        """The whole body is here (ended without an error)."""
        return self.ended and self.error is None

    def _wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Chunks in order until the end (buffered ones are still delivered after an error)."""
        chunks = self.chunks
        while True:
            if chunks:
                yield chunks.popleft()
            elif self.ended:
                return
            else:
                waiter = self._waiter = trio.Event()
                await waiter.wait()


class Exchange:
    """One inbound request on a channel: send the body, await the head, read the body."""

    def __init__(self, channel: Channel, rid: int) -> None:
        self.channel = channel
        self.rid = rid
        self.head: p.Response | None = None
        self.error: WorkerFailed | None = None
        self._head_event = trio.Event()
        self._credit: trio.Semaphore | None = None
        """Request-body window; created when the first body chunk is sent."""
        self._inbox = _Inbox()
        self.finished = False
        self.subrequests = 0

    # ---- request body -----------------------------------------------------------
    async def send_body(self, data: bytes) -> None:
        """Send a piece of the request body (split into chunks; waits for window)."""
        if self._credit is None:
            self._credit = trio.Semaphore(p.WINDOW)
        for i in range(0, len(data), p.MAX_CHUNK):
            await self._credit.acquire()
            if self.error is not None or self.finished:
                raise self.error or WorkerFailed(502, "request finished")
            await self.channel.send(p.Chunk(self.rid, data[i : i + p.MAX_CHUNK]))

    async def end_body(self) -> None:
        if self.error is None and not self.finished:
            await self.channel.send(p.End(self.rid))

    # ---- response ---------------------------------------------------------------
    async def response(self) -> p.Response:
        """The response head; raises WorkerFailed when the worker failed first."""
        await self._head_event.wait()
        if self.head is None:
            raise self.error or WorkerFailed(502, "worker sent no response")
        return self.head

    async def body(self) -> AsyncIterator[bytes]:
        """Response body chunks; acknowledges each after the consumer took it.

        Raises WorkerFailed when the stream fails midway (the client must then see
        an aborted connection, not a complete body).
        """
        if self.head is None or not self.head.has_body:
            return
        inbox = self._inbox
        async for chunk in inbox:
            yield chunk
            # No credit is needed once the worker has ended the stream.
            if not self.finished and not inbox.ended:
                await self.channel.send_quiet(p.Ack(self.rid, 1))
        if inbox.error is not None:
            raise inbox.error

    def whole_body(self) -> bytes | None:
        """The response body if all of it has already arrived (else None).

        Lets the data plane answer a small response in one piece, with a
        Content-Length, instead of streaming it chunked.
        """
        if self.head is None:
            return None
        inbox = self._inbox
        if not self.head.has_body:
            return b""
        if not inbox.complete:
            return None
        data = b"".join(inbox.chunks)
        inbox.chunks.clear()
        return data

    async def abort(self, reason: str) -> None:
        """Tell the worker to stop this request (client gone, deadline)."""
        if not self.finished:
            self._finish(WorkerFailed(499, reason))
            await self.channel.send_quiet(p.Abort(self.rid, reason))

    def close(self) -> None:
        """Forget the exchange (after the response was fully delivered)."""
        self._finish(None)

    # ---- from the reader --------------------------------------------------------
    def _on_head(self, frame: p.Response) -> None:
        if self.head is None and self.error is None:
            problem = head_problem(frame.status, frame.headers)
            if problem is not None:
                self.channel.host.log(
                    "error", f"the worker sent an invalid response head: {problem}", self.rid
                )
                self._fail(WorkerFailed(502, "Bad Gateway: the worker sent an invalid response"))
                return
            headers = end_to_end(frame.headers)
            if headers is not frame.headers:
                frame = msgspec.structs.replace(frame, headers=headers)
            self.head = frame
            if not frame.has_body:
                self._inbox.end()
            self._head_event.set()

    def _fail(self, error: WorkerFailed) -> None:
        if self.error is None:
            self.error = error
        self._inbox.end(error)
        self._head_event.set()
        if self._credit is not None:
            for _ in range(p.WINDOW):  # wake a blocked body sender
                self._credit.release()

    def _finish(self, error: WorkerFailed | None) -> None:
        if self.finished:
            return
        if error is not None:
            self._fail(error)
        self.finished = True
        self._inbox.end(self._inbox.error)
        self.channel._exchanges.pop(self.rid, None)


class Channel:
    """Daemon side of one worker's socket."""

    def __init__(self, sock: trio.socket.SocketType, host: ChannelHost, name: str = "") -> None:
        self.sock = sock
        self.host = host
        self.name = name
        self.hello: p.Hello | None = None
        self.pid = 0
        """Host pid of the worker (from SCM_CREDENTIALS)."""
        self.hello_received = trio.Event()
        self.closed = trio.Event()
        self.close_reason = ""
        self._exchanges: dict[int, Exchange] = {}
        self._uploads: dict[int, _Inbox] = {}
        self._fetch_credit: dict[int, trio.Semaphore] = {}
        self._fetch_scopes: dict[int, trio.CancelScope] = {}
        self._fetch_counts: dict[int, int] = {}
        self._next_rid = 1
        self._send_lock = trio.Lock()
        self._fd = sock.fileno()
        self._buf = p.FrameBuffer()
        self._out: list[bytes] = []
        """Frames waiting for the flusher (written once per scheduler batch)."""
        self._out_size = 0
        self._flusher: trio.lowlevel.Task | None = None
        self._flusher_parked = False
        self._drained = trio.lowlevel.ParkingLot()
        self.on_hello: Callable[[], None] | None = None
        """Called once when the Hello arrives (after ``pid`` is known)."""
        self.on_close: Callable[[], None] | None = None
        """Called once when the channel is marked closed (the host's supervision)."""

    @property
    def in_flight(self) -> int:
        return len(self._exchanges)

    # ---- sending ------------------------------------------------------------------
    async def send(self, frame: p.Frame) -> None:
        """Write one frame; raises WorkerFailed(502) when the worker is gone."""
        await self.send_bytes(p.encode(frame))

    async def send_bytes(self, payload: bytes) -> None:
        """Queue encoded frames (one or several, whole); raises WorkerFailed(502).

        While the channel runs, frames go to a flusher task that writes everything
        queued in one scheduler batch with one ``write``: requests dispatched together
        wake the worker once, and it answers them together. The caller waits only when
        over HIGH_WATER bytes are queued. A write that fails marks the channel closed;
        its in-flight requests then fail with the instance's exit cause (``fail_all``).
        """
        if self.closed.is_set():
            raise WorkerFailed(502, "worker instance is gone")
        if self._flusher is None:
            await self._write_now(payload)
            return
        self._out.append(payload)
        self._out_size += len(payload)
        if self._flusher_parked:
            self._flusher_parked = False
            trio.lowlevel.reschedule(self._flusher)
        if self._out_size > HIGH_WATER:
            await self._drained.park()

    async def _write_now(self, payload: bytes) -> None:
        """Write at once (no flusher running): one non-blocking ``write`` when nobody
        else is writing, the rest under the send lock, waiting for writability."""
        lock = self._send_lock
        if not lock.locked():
            try:
                n = os.write(self._fd, payload)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                self._mark_closed(f"send failed: {exc.strerror}")
                raise WorkerFailed(502, "worker instance is gone") from exc
            if n == len(payload):
                return
            lock.acquire_nowait()  # free (checked above, no await since): keeps frames whole
            try:
                await self._send_rest(memoryview(payload)[n:])
            finally:
                lock.release()
            return
        async with lock:
            await self._send_rest(memoryview(payload))

    async def _flush_loop(self) -> None:
        """Write queued frames after the tasks of the current batch have run."""
        self._flusher = trio.lowlevel.current_task()
        try:
            while not self.closed.is_set():
                if not self._out:
                    self._flusher_parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._unpark_flusher)
                    continue
                out = self._out
                data = out[0] if len(out) == 1 else b"".join(out)
                out.clear()
                self._out_size = 0
                try:
                    await self._write_now(data)
                except WorkerFailed:
                    return
                finally:
                    self._drained.unpark_all()
        finally:
            self._flusher = None
            self._flusher_parked = False
            self._out.clear()
            self._drained.unpark_all()

    def _unpark_flusher(self, _raise_cancel: object) -> trio.lowlevel.Abort:
        """Abort callback of the parked flusher: once trio reschedules it with the
        cancellation, ``send_bytes`` must not reschedule it a second time."""
        self._flusher_parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def _send_rest(self, data: memoryview) -> None:
        try:
            while data:
                n = await self.sock.send(data)
                data = data[n:]
        except OSError as exc:
            self._mark_closed(f"send failed: {exc.strerror}")
            raise WorkerFailed(502, "worker instance is gone") from exc
        except trio.ClosedResourceError as exc:
            raise WorkerFailed(502, "worker instance is gone") from exc

    async def send_quiet(self, frame: p.Frame) -> None:
        """Send, ignoring a dead worker (acks, aborts)."""
        with contextlib.suppress(WorkerFailed):
            await self.send(frame)

    async def request(self, method: str, url: str, headers: p.Headers, has_body: bool) -> Exchange:
        """Start an inbound request; returns its exchange."""
        rid = self._next_rid
        self._next_rid += 1
        ex = Exchange(self, rid)
        self._exchanges[rid] = ex
        try:
            await self.send(p.Request(rid, method, url, headers, has_body))
        except WorkerFailed:
            ex._finish(WorkerFailed(502, "worker instance is gone"))
            raise
        return ex

    def fail_all(self, status: int, message: str) -> None:
        """Fail every in-flight request (the worker died or was killed)."""
        for ex in list(self._exchanges.values()):
            ex._finish(WorkerFailed(status, message))
        for inbox in self._uploads.values():
            inbox.end(WorkerFailed(status, message))
        for scope in self._fetch_scopes.values():
            scope.cancel()

    def close(self) -> None:
        self._mark_closed("closed by the kernel")
        self.sock.close()

    def _mark_closed(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            if self.on_close is not None:
                self.on_close()

    # ---- receiving ----------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read frames until EOF; then mark the channel closed (in-flight requests are
        failed by whoever knows why the worker died: see ``fail_all``)."""
        task_status.started()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._flush_loop)
            try:
                await self._read_loop()
            except p.ProtocolError as exc:
                log.warning("%s: protocol error: %s", self.name, exc)
                self._mark_closed(f"protocol error: {exc}")
            except OSError as exc:
                self._mark_closed(f"read failed: {exc.strerror}")
            except trio.ClosedResourceError:
                # close() while reading: the kernel saw the process exit before EOF.
                self._mark_closed("closed by the kernel")
            finally:
                self._mark_closed("worker closed its channel")
                nursery.cancel_scope.cancel()

    async def _read_loop(self) -> None:
        while self.hello is None:
            data, anc, _flags, _addr = await self.sock.recvmsg(RECV_SIZE, socket.CMSG_SPACE(_CREDS.size))
            if not data:
                return
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and not self.pid:
                    self.pid = _CREDS.unpack(cdata[: _CREDS.size])[0]
            frames = self._buf.feed(data)
            if frames and not isinstance(frames[0], p.Hello):
                raise p.ProtocolError(f"first frame must be hello, got {type(frames[0]).__name__}")
            for frame in frames:
                self._dispatch(frame)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        while True:
            data = await self.sock.recv(RECV_SIZE)
            if not data:
                return
            for frame in self._buf.feed(data):
                self._dispatch(frame)

    def _dispatch(self, f: p.Frame) -> None:
        # The frames of every response first (a hello-world answer is all four).
        kind = type(f)
        if kind is p.Response:
            if ex := self._exchanges.get(f.rid):
                ex._on_head(f)
            return
        if kind is p.Settled:
            return
        if (kind is p.Chunk or kind is p.End) and f.sid > 0:
            if ex := self._exchanges.get(f.sid):
                if kind is p.End:
                    ex._inbox.end()
                elif not ex._inbox.put(f.data):
                    raise p.ProtocolError(f"stream {f.sid}: window exceeded")
            return
        match f:
            case p.Hello():
                if self.hello is not None:
                    raise p.ProtocolError("second hello")
                self.hello = f
                self.pid = self.pid or f.pid
                self.hello_received.set()
                if self.on_hello is not None:
                    self.on_hello()
            case p.Response(rid=rid):
                if ex := self._exchanges.get(rid):
                    ex._on_head(f)
            case p.Failure(rid=rid):
                if f.detail:
                    self.host.log("error", f.detail, rid)
                if ex := self._exchanges.get(rid):
                    ex._fail(WorkerFailed(f.status, f.message))
            case p.Chunk(sid=sid) if sid > 0:
                ex = self._exchanges.get(sid)
                if ex and not ex._inbox.put(f.data):
                    raise p.ProtocolError(f"stream {sid}: window exceeded")
            case p.Chunk(sid=sid):
                inbox = self._uploads.get(sid)
                if inbox and not inbox.put(f.data):
                    raise p.ProtocolError(f"stream {sid}: window exceeded")
            case p.End(sid=sid) | p.Abort(sid=sid) if sid > 0:
                if ex := self._exchanges.get(sid):
                    if isinstance(f, p.End):
                        ex._inbox.end()
                    else:
                        ex._fail(WorkerFailed(502, "the worker aborted the response"))
            case p.End(sid=sid):
                if inbox := self._uploads.get(sid):
                    inbox.end()
            case p.Abort(sid=sid):
                if inbox := self._uploads.get(sid):
                    inbox.end(WorkerFailed(499, "aborted by the worker"))
                if scope := self._fetch_scopes.get(sid):
                    scope.cancel()
            case p.Ack(sid=sid, n=n) if sid > 0:
                if (ex := self._exchanges.get(sid)) and ex._credit is not None:
                    for _ in range(max(0, min(n, p.WINDOW))):
                        ex._credit.release()
            case p.Ack(sid=sid, n=n):
                if credit := self._fetch_credit.get(sid):
                    for _ in range(max(0, min(n, p.WINDOW))):
                        credit.release()
            case p.Log():
                self.host.log(f.level, f.message, f.rid)
            case p.Settled():
                pass
            case p.Call():
                self._nursery.start_soon(self._do_call, f)
            case p.Fetch():
                self._start_fetch(f)
            case _:
                raise p.ProtocolError(f"unexpected frame from worker: {type(f).__name__}")

    # ---- host calls -----------------------------------------------------------------
    async def _do_call(self, f: p.Call) -> None:
        try:
            value = await self.host.call(f.op, f.args)
            result = p.Result(f.cid, True, value)
        except KVError as exc:
            result = p.Result(f.cid, False, None, exc.name, str(exc))
        except Exception as exc:
            log.exception("%s: host call %s failed", self.name, f.op)
            self.host.log("error", f"host call {f.op} failed: {type(exc).__name__}")
            result = p.Result(f.cid, False, None, "Error", f"{f.op} failed")
        await self.send_quiet(result)

    # ---- subrequests ----------------------------------------------------------------
    def subrequest_number(self, rid: int) -> int:
        """Count a subrequest of inbound request ``rid`` (0: of the instance's current work)."""
        ex = self._exchanges.get(rid)
        if ex is not None:
            ex.subrequests += 1
            return ex.subrequests
        self._fetch_counts[0] = self._fetch_counts.get(0, 0) + 1 if self._exchanges else 1
        return self._fetch_counts[0]

    def _start_fetch(self, f: p.Fetch) -> None:
        sid = -f.fid
        body = None
        if f.has_body:
            inbox = self._uploads[sid] = _Inbox()
            body = self._upload_body(sid, inbox)
        scope = self._fetch_scopes[sid] = trio.CancelScope()
        self._nursery.start_soon(self._do_fetch, f, body, scope)

    async def _upload_body(self, sid: int, inbox: _Inbox) -> AsyncIterator[bytes]:
        async for chunk in inbox:
            yield chunk
            if not inbox.ended:
                await self.send_quiet(p.Ack(sid, 1))
        if inbox.error is not None:
            raise inbox.error

    async def _do_fetch(self, f: p.Fetch, body: AsyncIterator[bytes] | None, scope: trio.CancelScope) -> None:
        sid = -f.fid
        resp: OutboundResponse | None = None
        try:
            with scope:
                try:
                    resp = await self.host.fetch(f, body)
                except FetchRefused as exc:
                    await self.send_quiet(p.FetchError(f.fid, exc.name, exc.message))
                    return
                except Exception as exc:
                    log.warning("%s: subrequest failed: %r", self.name, exc)
                    await self.send_quiet(p.FetchError(f.fid, "TypeError", "fetch failed"))
                    return
                credit = self._fetch_credit[sid] = trio.Semaphore(p.WINDOW)
                await self.send(
                    p.FetchResponse(f.fid, resp.status, resp.status_text, resp.headers, resp.url, True)
                )
                try:
                    async for data in resp.body:
                        for i in range(0, len(data), p.MAX_CHUNK):
                            await credit.acquire()
                            await self.send(p.Chunk(sid, data[i : i + p.MAX_CHUNK]))
                except FetchRefused as exc:
                    await self.send_quiet(p.Abort(sid, exc.message))
                    return
                except (OSError, Exception) as exc:
                    if isinstance(exc, WorkerFailed):
                        return
                    await self.send_quiet(p.Abort(sid, "subrequest body failed"))
                    return
                await self.send(p.End(sid))
        except WorkerFailed:
            pass
        finally:
            self._uploads.pop(sid, None)
            self._fetch_credit.pop(sid, None)
            self._fetch_scopes.pop(sid, None)
            if resp is not None and resp.close is not None:
                with trio.CancelScope(shield=True):
                    await resp.close()
