"""A seed: a forked child of the launcher that loaded one function version and forks it.

Life of a seed (all in one single-threaded process, leaving only via ``os._exit``):
die-with-parent, close inherited descriptors, wait for the launcher to attach it
(cgroups), apply the isolation layers in PHASES order, call ``entry(payload)`` (the
user's code runs here, already sandboxed), then serve ``fork`` commands: each fork
becomes an instance that calls ``entry(loaded, channel_fd, payload)``. The seed reaps
its instances and reports their wait statuses to the launcher.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import selectors
import signal
import socket
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from kernel.launcher import child, hugepages, rawfork
from kernel.launcher.memo import SandboxMemo
from kernel.launcher.wire import Conn
from kernel.sandbox import Sandbox


def run_seed(
    sock: socket.socket,
    gate_fd: int | None,
    entry: str,
    payload: Any,
    sandbox: Sandbox | None,
    layers: Sequence[Any],
    parent: int,
) -> NoReturn:
    """The body of a freshly forked seed (never returns)."""
    conn = Conn(sock)
    try:
        child.reset_signals()
        child.die_with_parent(parent)
        child.close_all_except({0, 1, 2, sock.fileno(), *([gate_fd] if gate_fd is not None else [])})
        child.wait_gate(gate_fd)
        if sandbox is not None:
            child.apply_layers(layers, sandbox, instance=False)
        child.die_with_parent(parent)  # setuid clears the parent-death signal
        child.set_title(sandbox)
        load = child.resolve(entry)
    except BaseException as exc:
        _report_failure(conn, f"seed set-up failed: {child.describe(exc)}", "SetupError")
    started = time.perf_counter()
    try:
        loaded = load(payload)
    except BaseException as exc:
        _report_failure(conn, str(exc) or type(exc).__name__, type(exc).__name__)
    load_ms = (time.perf_counter() - started) * 1000
    gc.collect()
    gc.freeze()  # keep forks from copying pages when the collector touches old objects
    _trim_heap()
    huge, _refused = hugepages.collapse_anonymous()
    loop = SeedLoop(conn, loaded, layers)
    report = getattr(loaded, "seed_report", None)  # e.g. the runtime's warm-up outcome
    conn.send({"op": "ready", "load_ms": load_ms, "huge_pages": huge, "report": report})
    loop.run()


def _trim_heap() -> None:
    """Give free malloc memory back (``malloc_trim``): the engine's compile-time
    allocations leave ~5 MB of free heap in a seed, which every ``fork()`` would copy
    the page-table entries of and which counts against the seed's memory."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)


def _report_failure(conn: Conn, message: str, kind: str) -> NoReturn:
    with contextlib.suppress(Exception):
        conn.send({"op": "failed", "error": message, "error_type": kind})
    os._exit(1)


def _live(fds: Sequence[int]) -> set[int]:
    out = set()
    for fd in fds:
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            continue
        out.add(fd)
    return out


class SeedLoop:
    """Forks instances on command and reports their exits."""

    def __init__(self, conn: Conn, loaded: Any, layers: Sequence[Any]) -> None:
        self.conn = conn
        self.loaded = loaded
        self.layers = layers
        self.instance_layers = [layer for layer in layers if child.applies_in_instances(layer)]
        self.memo = SandboxMemo()
        self.entries: dict[str, Any] = {}
        """Resolved instance entry points: resolved here once, not in every fork."""
        self.pid = os.getpid()
        # descriptors the loaded runtime opened itself: instances keep them
        self.loaded_fds = _live(child.open_fds()) - {0, 1, 2, conn.fileno()}
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(conn.sock, selectors.EVENT_READ, "conn")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")

    def run(self) -> NoReturn:
        while True:
            for key, _ in self.selector.select():
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 4096):
                            pass
                    self.reap()
                    continue
                try:
                    frames = self.conn.receive()
                except OSError:
                    frames = None
                if frames is None:
                    self.shutdown()
                for msg in frames:
                    if msg.get("op") == "fork":
                        self.fork(msg)

    def fork(self, msg: dict[str, Any]) -> None:
        fds = msg["fds"]
        channel = fds[0]
        gate = fds[1] if msg.get("gate") else None
        serve = self._entry(msg["entry"])
        sandbox = self._sandbox(msg.get("sandbox"))
        started = time.perf_counter()
        pid = rawfork.fork()
        if pid == 0:
            self.instance(msg, channel, gate, serve, sandbox)
        fork_ms = (time.perf_counter() - started) * 1000
        os.close(channel)
        if gate is not None:
            os.close(gate)
        self.children.add(pid)
        self.conn.send({"op": "forked", "id": msg["id"], "pid": pid, "fork_ms": fork_ms})

    def _entry(self, entry: str) -> Any:
        """The callable named ``entry`` (cached), or the exception resolving it raised."""
        found = self.entries.get(entry)
        if found is None:
            try:
                found = child.resolve(entry)
            except Exception as exc:  # reported by the instance, which exits
                return exc
            self.entries[entry] = found
        return found

    def _sandbox(self, raw: dict[str, Any] | None) -> Any:
        """The instance's Sandbox when a layer applies inside instances (built here,
        before the fork, from memoised parts), else None; or the exception building it raised."""
        if not raw or not self.instance_layers:
            return None
        try:
            return self.memo.build(raw)
        except Exception as exc:  # reported by the instance, which exits
            return exc

    def instance(
        self, msg: dict[str, Any], channel: int, gate: int | None, serve: Any, sandbox: Any
    ) -> NoReturn:
        """The body of a forked instance (never returns).

        Every page written here is copied from the seed (CoW), and page faults cost
        ~3-5 us each on these hosts: do as little as possible before ``serve``. The
        sandbox is rebuilt only when a layer applies inside instances; the title is
        read straight from the OCI data; the sandbox (only when a layer applies inside
        instances) was built by the seed before the fork.
        """
        try:
            child.reset_seed_signals()
            child.die_with_parent(self.pid)
            keep = {0, 1, 2, channel, *self.loaded_fds, *([gate] if gate is not None else [])}
            child.close_all_except(keep)
            child.wait_gate(gate)
            for prepared in (serve, sandbox):
                if isinstance(prepared, BaseException):
                    raise prepared
            if sandbox is not None:
                child.apply_layers(self.instance_layers, sandbox, instance=True)
            child.set_title(child.oci_title(msg.get("sandbox")))
        except BaseException as exc:
            child.fail(f"instance set-up failed: {child.describe(exc)}")
        try:
            serve(self.loaded, channel, msg.get("payload"))
        except BaseException:
            child.print_traceback()
            os._exit(1)
        os._exit(0)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.conn.send({"op": "exit", "pid": pid, "status": status})

    def shutdown(self) -> NoReturn:
        """The launcher is gone: take every instance down with us."""
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os._exit(0)
