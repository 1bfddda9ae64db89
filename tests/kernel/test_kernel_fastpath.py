"""The request path's cheap forms keep the semantics of what they replaced.

Batched channel writes, direct hook calls, scrape-time request metrics and the
watchdog's kept-open stat files.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pluggy
import pytest
import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from kernel import hookspecs
from kernel import protocol as p
from kernel.channel import Channel, enable_passcred
from kernel.hookspecs import hookimpl
from kernel.interfaces import InboundRequest, Rejection, Route
from kernel.metrics import LATENCY_BUCKETS, Metrics
from kernel.plugins import Hooks
from kernel.watchdog import StatReader, cpu_time_ms


class _Host:
    def log(self, level: str, message: str, rid: int = 0) -> None:
        pass

    async def call(self, op: str, args: list) -> object:
        return None

    async def fetch(self, frame, body):
        raise AssertionError("no fetch here")


async def test_requests_sent_together_leave_in_one_write(nursery) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    enable_passcred(ours)
    channel = Channel(trio.socket.from_stdlib_socket(ours), _Host(), name="t-batch")
    nursery.start_soon(channel.run)
    theirs.sendall(p.encode(p.Hello(1, "fake")))
    with trio.fail_after(5):
        await channel.hello_received.wait()
        await trio.sleep(0.05)  # the flusher task is running
        exchanges = [await channel.request("GET", f"http://f.localhost/{i}", [], False) for i in range(5)]
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):  # queued: nothing written within this batch
            theirs.recv(1 << 20)
        assert len(channel._out) == 5
        await trio.sleep(0.05)
    data = theirs.recv(1 << 20)  # then written together
    frames = p.FrameBuffer().feed(data)
    assert [f.url for f in frames] == [f"http://f.localhost/{i}" for i in range(5)]
    assert [f.rid for f in frames] == [ex.rid for ex in exchanges]
    # and the answers still reach their exchanges
    theirs.setblocking(True)
    theirs.sendall(
        b"".join(p.encode(p.Response(ex.rid, 200 + i, [], False)) for i, ex in enumerate(exchanges))
    )
    with trio.fail_after(5):
        heads = [await ex.response() for ex in exchanges]
    assert [h.status for h in heads] == [200, 201, 202, 203, 204]
    theirs.close()


def _hooks(*plugins: object) -> Hooks:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"p{i}")
    return Hooks(pm)


def test_direct_hook_calls_keep_pluggy_semantics() -> None:
    calls: list[str] = []

    class First:
        @hookimpl(trylast=True)
        def noslate_route(self, request):
            calls.append("last")
            return Route("fallback", request.target)

        @hookimpl
        def noslate_admit(self, request, function):
            calls.append("admit-a")
            return Rejection(429, "a", "first")

    class Second:
        @hookimpl
        def noslate_route(self, request):
            calls.append("mine")
            return Route("mine", "/x") if request.host.startswith("mine.") else None

        @hookimpl
        def noslate_admit(self, function):  # fewer arguments than the spec
            calls.append("admit-b")
            return Rejection(503, "b", "second")

    hooks = _hooks(First(), Second())
    req = InboundRequest("GET", "/a", [], "mine.localhost")
    assert hooks.route(request=req) == Route("mine", "/x")
    assert calls == ["mine"]  # first non-None result wins; the trylast one never ran
    other = InboundRequest("GET", "/a", [], "other.localhost")
    assert hooks.route(request=other) == Route("fallback", "/a")
    calls.clear()
    rejection = hooks.admit(request=req, function=None)
    # every admit implementation runs (as through pluggy), the first rejection wins
    assert sorted(calls) == ["admit-a", "admit-b"]
    assert rejection == hooks._pm.hook.noslate_admit(request=req, function=None)[0]

    class Late:
        @hookimpl(tryfirst=True)
        def noslate_route(self, request):
            return Route("late", "/")

    hooks._pm.register(Late(), name="late")  # registered later: seen at once
    assert hooks.route(request=other) == Route("late", "/")


def test_request_metrics_expose_what_prometheus_client_did() -> None:
    samples = [("hello", 200, 0.0004), ("hello", 200, 0.0025), ("", 404, 0.001), ("hello", 500, 31.0)]
    ours = Metrics()
    for function, status, seconds in samples:
        ours.requests.record(function, status, seconds)
    registry = CollectorRegistry()
    counter = Counter("noslate_requests", "x", ["function", "status"], registry=registry)
    hist = Histogram(
        "noslate_request_duration_seconds", "x", ["function"], buckets=LATENCY_BUCKETS, registry=registry
    )
    for function, status, seconds in samples:
        counter.labels(function or "-", str(status)).inc()
        if function:
            hist.labels(function).observe(seconds)

    def lines(text: str) -> set[str]:
        return {
            line
            for line in text.splitlines()
            if line.startswith(("noslate_requests_total", "noslate_request_duration_seconds"))
            and "_created" not in line  # (creation times are not exported any more)
        }

    expected = lines(generate_latest(registry).decode())
    assert lines(ours.render().decode()) == expected
    assert 'noslate_request_duration_seconds_bucket{function="hello",le="0.0025"} 2.0' in expected
    assert ours.requests.get("", 404) == 1


def test_stat_reader_follows_one_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        reader = StatReader()
        first = reader.cpu_time_ms(proc.pid)
        assert first is not None and first == cpu_time_ms(proc.pid)
        assert reader.cpu_time_ms(proc.pid) is not None  # the same descriptor, read again
    finally:
        proc.stdin.close()
        proc.wait(10)
    assert reader.cpu_time_ms(proc.pid) is None  # reaped: the kept descriptor says so
    assert reader.cpu_time_ms(os.getpid()) is not None
    reader.close()
    assert reader._fds == {}
