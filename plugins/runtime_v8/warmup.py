"""Warm-up in a warmfork seed: the profile's ``worker.warmup`` requests, through the
user's handler, before the seed serves forks (forks inherit the compiled code).

The seed plays the kernel's part on a private socketpair: it sends each request over
the real protocol to an :class:`EventLoop` of its own, acknowledges body chunks,
answers KV and Cache calls from a :class:`kernel.warmup.ScratchStore` and outbound
``fetch`` with a local 503, and drops the responses. Afterwards the loop and its
socket are gone, timers the warm-up armed are dropped and the host is detached, so
a fork starts exactly as one of an unwarmed seed would, with more code compiled.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from kernel import protocol as p
from kernel import warmup as spec

if TYPE_CHECKING:
    from plugins.runtime_v8.worker import Loaded

FIRST_RID = 1 << 30
"""Warm-up request ids, far from the kernel's (which count from 1 in each instance)."""


class _Driver:
    """The kernel's side of the warm-up channel."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = p.FrameBuffer()
        self.store = spec.ScratchStore()
        self.done: dict[int, dict[str, Any]] = {}
        self.status: dict[int, int] = {}
        self.ended: set[int] = set()
        self.logs: list[str] = []

    def send(self, *frames: p.Frame) -> None:
        self.sock.sendall(b"".join(p.encode(f) for f in frames))

    def poll(self) -> None:
        """Read and answer whatever the loop wrote."""
        while True:
            try:
                data = self.sock.recv(p.MAX_FRAME)
            except BlockingIOError:
                return
            if not data:
                return
            for frame in self.frames.feed(data):
                self._on(frame)

    def _on(self, f: p.Frame) -> None:
        match f:
            case p.Response(rid=rid, status=status):
                self.status[rid] = status
            case p.Chunk(sid=sid):
                self.send(p.Ack(sid, 1))
            case p.End(sid=sid):
                self.ended.add(sid)
            case p.Settled(rid=rid):
                self.done.setdefault(rid, {"status": self.status.get(rid, 0)})
            case p.Failure(rid=rid, status=status, message=message):
                self.done.setdefault(rid, {"status": status, "error": message})
            case p.Log(level=level, message=message) if level in ("error", "warn", "warning"):
                self.logs.append(message[:300])
            case p.Call(cid=cid, op=op, args=args):
                try:
                    self.send(p.Result(cid, True, self.store.call(op, args)))
                except ValueError as exc:
                    self.send(p.Result(cid, False, None, "TypeError", str(exc)))
            case p.Fetch(fid=fid, url=url):
                headers = [("content-type", "text/plain; charset=utf-8"), (spec.HEADER, "1")]
                body = spec.FETCH_TEXT.encode()
                self.send(
                    p.FetchResponse(fid, spec.FETCH_STATUS, "Service Unavailable", headers, url, True),
                    p.Chunk(-fid, body),
                    p.End(-fid),
                )
            case _:
                pass


def run(loaded: Loaded, requests: list[dict[str, Any]], budget_s: float) -> list[dict[str, Any]]:
    """Send ``requests`` (``kernel.warmup.requests``) one after another within
    ``budget_s`` seconds; a report per request: method, path, status, ms (or error)."""
    from plugins.runtime_v8.loop import EventLoop

    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    host = loaded.host
    early, host.early = host.early, []  # top-level console output: still the forks'
    timers_before = {t[1] for t in host.timers}
    loop = EventLoop(loaded, os.dup(ours.fileno()), loaded.init)
    ours.close()
    driver = _Driver(theirs)
    host.attach(loop.write)
    deadline = time.monotonic() + budget_s
    report: list[dict[str, Any]] = []
    try:
        for n, req in enumerate(requests):
            rid = FIRST_RID + n
            entry: dict[str, Any] = {"method": req["method"], "path": req["path"]}
            report.append(entry)
            if time.monotonic() >= deadline:
                entry["error"] = "no time left in the warm-up budget"
                continue
            started = time.perf_counter()
            body = req["body"].encode()
            frames: list[p.Frame] = [p.Request(rid, req["method"], req["url"], req["headers"], bool(body))]
            if body:
                frames += [p.Chunk(rid, body), p.End(rid)]
            driver.send(*frames)
            while rid not in driver.done and time.monotonic() < deadline:
                loop.turn(min(0.05, max(0.0, deadline - time.monotonic())))
                driver.poll()
            outcome = driver.done.get(rid)
            if outcome is None:
                if rid in driver.ended:
                    entry["status"] = driver.status.get(rid, 0)
                    entry["error"] = "it responded, but its waitUntil work did not settle in time"
                else:
                    entry["error"] = f"no response within the warm-up budget ({budget_s:g} s)"
                driver.send(p.Abort(rid, "warm-up timed out"))
                loop.turn(0)
                driver.poll()
                continue
            entry["status"] = outcome["status"]
            entry["ms"] = round((time.perf_counter() - started) * 1000, 2)
            if outcome.get("error"):
                entry["error"] = f"{outcome['status']} {outcome['error']}"
    finally:
        _detach(loop, host, timers_before)
        host.early = early
        theirs.close()
    if driver.logs and report:
        report[-1]["log"] = driver.logs[-3:]
    return report


def _detach(loop: Any, host: Any, timers_before: set[int]) -> None:
    """Leave no trace of the warm-up in the process the seed forks."""
    with contextlib.suppress(Exception):
        loop.sel.close()
    with contextlib.suppress(OSError):
        loop.sock.close()
    host.write = None
    host.timers[:] = [t for t in host.timers if t[1] in timers_before]
    heapq.heapify(host.timers)
    host.streams.clear()
    host.settle_later.clear()
    host.active.clear()
    host.current_rid = 0
