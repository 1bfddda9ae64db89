"""The single-threaded event loop of a serving instance.

``selectors`` on the channel plus the host's timer heap. Each kernel frame becomes one
call into JS (microtasks run when it returns); due timers fire one call each. Writes
are non-blocking with a bounded queue (flow control keeps it small).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import selectors
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from kernel import protocol as p
from plugins.runtime_v8.bridge import LOG_LEVELS, headers_json, js_str, to_json_value

if TYPE_CHECKING:
    from plugins.runtime_v8.worker import Loaded

RECV_SIZE = 256 * 1024


class EventLoop:
    """Serves the kernel protocol for one instance."""

    def __init__(self, loaded: Loaded, fd: int | None, init: dict[str, Any]) -> None:
        """``fd`` None: built ahead (a warmfork spare); :meth:`attach` gives the channel."""
        self.loaded = loaded
        self.api = loaded.api
        self.host = loaded.host
        self.init = init
        self.sel = selectors.DefaultSelector()
        self.reseeded = False
        """True once this process seeded the engine's PRNG from ``os.urandom`` itself."""
        if fd is not None:
            self.attach(fd, init)
        self.outbuf = bytearray()
        self.held: list[bytes] | None = None
        """Frames written while a batch of input is processed (sent together after it)."""
        self.want_write = False
        self.frames = p.FrameBuffer()
        self.draining = False
        self.drain_deadline = 0.0
        # JS functions looked up once, in the seed (``Loaded.calls``): each attribute
        # read on the JS object crosses the bridge and wraps a new function object.
        calls = self.calls = loaded.calls
        self._request = calls["request"]
        self._chunk = calls["chunk"]
        self._end = calls["end"]
        self._timer = calls["timer"]
        self.handlers = {
            p.Request: self._on_request,
            p.Chunk: lambda f: self._js(self._chunk, f.sid, f.data.decode("latin-1")),
            p.End: lambda f: self._js(self._end, f.sid),
            p.Ack: self._on_ack,
            p.Abort: self._on_abort,
            p.Result: self._on_result,
            p.FetchResponse: lambda f: self._js(
                calls["fresp"],
                f.fid,
                f.status,
                js_str(f.status_text),
                headers_json(f.headers),
                js_str(f.url),
                f.has_body,
            ),
            p.FetchError: lambda f: self._js(calls["ferr"], f.fid, f.error_name, js_str(f.message)),
            p.Shutdown: self._on_shutdown,
        }

    def attach(self, fd: int, init: dict[str, Any]) -> None:
        """Serve the kernel channel ``fd`` with this instance's ``init``."""
        self.init = init
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.sel.register(self.sock, selectors.EVENT_READ)

    # ---- output -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
            return
        if self.outbuf:
            self.outbuf += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            os._exit(0)  # the kernel is gone
        if sent < len(data):
            self.outbuf += data[sent:]
            self._set_write(True)

    def _hold(self) -> None:
        """Collect writes until :meth:`_release`: the answers to every frame of one
        read (or every due timer) leave in one ``send``, one wake-up of the kernel."""
        self.held = []

    def _release(self) -> None:
        held, self.held = self.held, None
        if held:
            self.write(held[0] if len(held) == 1 else b"".join(held))

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.outbuf)
        except BlockingIOError:
            return
        except OSError:
            os._exit(0)
        del self.outbuf[:sent]
        if not self.outbuf:
            self._set_write(False)

    def _set_write(self, on: bool) -> None:
        if on != self.want_write:
            self.want_write = on
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
            self.sel.modify(self.sock, events)

    # ---- start ------------------------------------------------------------------

    def _fresh_process_state(self) -> None:
        """After fork: a new time origin and (unless this process drew its own
        already: a warmed spare, see ``worker.warm``) new randomness."""
        self.host.reset_origin()
        if not self.reseeded:
            self.calls["reseed"](os.urandom(16).hex())
        # timers armed in the seed count from now
        now = time.monotonic()
        self.host.timers = [(max(w, now), s, t) for w, s, t in self.host.timers]
        heapq.heapify(self.host.timers)

    def run(self) -> None:
        self.host.min_log_level = LOG_LEVELS.get(str(self.init.get("log_level") or "debug"), 0)
        info = {
            "function": self.init.get("function", ""),
            "version": self.init.get("version", ""),
            "instance": self.init.get("instance", ""),
            "load_ms": round(self.loaded.load_ms, 3),
        }
        self.write(p.encode(p.Hello(os.getpid(), "aworker", info)))
        # reseed while the kernel handles the Hello (no frame is read before this):
        # the first engine call after a fork costs ~1 ms of page copies (warmfork)
        self._fresh_process_state()
        self.host.attach(self.write)
        while True:
            self.turn()

    def turn(self, longest: float | None = None) -> None:
        """One pass: wait for the channel or the next timer (at most ``longest`` s),
        handle what arrived, fire due timers."""
        timers = self.host.timers
        timeout = longest
        if timers:
            due = max(0.0, timers[0][0] - time.monotonic())
            timeout = due if timeout is None else min(timeout, due)
        if self.draining:
            remaining = max(0.0, self.drain_deadline - time.monotonic())
            timeout = remaining if timeout is None else min(timeout, remaining)
        for _key, mask in self.sel.select(timeout):
            if mask & selectors.EVENT_WRITE:
                self._flush()
            if mask & selectors.EVENT_READ:
                self._hold()
                try:
                    self._read()
                finally:
                    self._release()
        if timers:
            self._hold()
            try:
                self._fire_timers()
            finally:
                self._release()
        if self.draining and (not self.host.active or time.monotonic() >= self.drain_deadline):
            self._exit()

    def _read(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._exit()
        for frame in self.frames.feed(data):
            handler = self.handlers.get(type(frame))
            if handler is not None:
                handler(frame)

    def _fire_timers(self) -> None:
        timers = self.host.timers
        now = time.monotonic()
        due = []
        while timers and timers[0][0] <= now:
            due.append(heapq.heappop(timers)[2])
        for tid in due:
            self._js(self._timer, tid)

    def _exit(self) -> None:
        if self.held:
            self.outbuf += b"".join(self.held)
        self.held = None
        with contextlib.suppress(OSError):
            self.sock.setblocking(True)
            if self.outbuf:
                self.sock.sendall(self.outbuf)
        os._exit(0)

    # ---- frames -----------------------------------------------------------------

    def _js(self, fn: Any, *args: Any) -> Any:
        """Call into the runtime; an internal JS failure is logged, never raised."""
        try:
            return fn(*args)
        except Exception as exc:
            sys.stderr.write(f"runtime_v8: runtime call failed: {exc}\n{traceback.format_exc()}")
            self.host.log("error", "internal runtime error (see the daemon log)", 0)
            return None

    def _on_request(self, f: p.Request) -> None:
        if self.draining:
            self.write(p.encode(p.Failure(f.rid, 503, "Service Unavailable: the instance is stopping")))
            return
        self.host.active.add(f.rid)
        self.host.current_rid = f.rid
        self._js(self._request, f.rid, js_str(f.method), js_str(f.url), headers_json(f.headers), f.has_body)
        self.host.current_rid = 0

    def _on_ack(self, f: p.Ack) -> None:
        if not self.host.on_ack(f.sid, f.n):
            self._js(self.calls["ack"], f.sid, f.n)

    def _on_abort(self, f: p.Abort) -> None:
        self.host.drop_stream(f.sid)
        self._js(self.calls["abort"], f.sid, js_str(f.reason))

    def _on_result(self, f: p.Result) -> None:
        value = to_json_value(f.value) if f.ok else ""
        self._js(self.calls["result"], f.cid, f.ok, value, f.error_name, js_str(f.error_message))

    def _on_shutdown(self, f: p.Shutdown) -> None:
        self.draining = True
        self.drain_deadline = time.monotonic() + max(0, f.grace_ms) / 1000.0
