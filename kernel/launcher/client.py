"""The daemon's side of the launcher (trio): start it, spawn, fork seeds and instances.

```python
launcher = await Launcher.start(preload=[...], layers=layers, config_path=path)
proc = await launcher.spawn(argv, env, pass_fds={3: fd}, sandbox=sb, info=info)
seed = await launcher.fork_seed(entry="pkg.mod:load", payload={...}, sandbox=sb, info=info)
inst = await seed.fork_instance(entry="pkg.mod:serve", payload={...}, channel_fd=fd,
                                sandbox=sb2, info=info2)
status = await inst.wait()          # like Popen.returncode: 0, 1, -9; inst.cause: "oom"...
await launcher.aclose()
```

Isolation layers run here on both ends of a process's life: ``prepare`` before the
command is sent, ``release`` once the exit is known (its first non-None result becomes
``WorkerProcess.cause``). The launcher process runs ``attach`` (with the pid) and the
child runs ``apply``. Every wait has a deadline.
"""

from __future__ import annotations

import array
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio
from attrs import define, field

from kernel.errors import StartError
from kernel.interfaces import SpawnInfo
from kernel.launcher.wire import ANC_SIZE, RECV_SIZE, FrameBuffer, encode, fds_from_ancillary
from kernel.sandbox import Sandbox

log = logging.getLogger("noslate.launcher")

CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    # STPyV8 finds its ICU data through $HOME (then /usr/share/stpyv8); with no HOME
    # at all it loads none, and the first Intl call is a fatal V8 error
    "HOME": "/nonexistent",
}


class LauncherError(StartError):
    """The launcher could not start a process (or is gone)."""


class SeedError(LauncherError):
    """A seed's ``entry(payload)`` raised: ``error_type`` and the user's message."""

    def __init__(self, message: str, error_type: str) -> None:
        self.error_type = error_type
        self.user_message = message
        super().__init__(message, fatal=True)


@define(eq=False)
class WorkerProcess:
    """A process started through the launcher (cold worker, seed or instance)."""

    pid: int
    kind: str
    info: SpawnInfo
    sandbox: Sandbox | None
    launcher: Launcher = field(repr=False)
    timings: dict[str, float] = field(factory=dict)
    """Launcher-side milliseconds: ``fork_ms``, ``attach_ms`` (seeds: ``load_ms``, ``ready_ms``)."""
    report: Any = None
    """A seed's report once loaded (the runtime's ``Loaded.seed_report``), or None."""
    status: int | None = None
    """Raw wait status (None when the launcher died before reporting it)."""
    returncode: int | None = None
    """Like ``Popen.returncode`` (negative signal number when killed)."""
    cause: str | None = None
    """What an isolation layer says ended it (``"oom"``), else None."""
    serving: bool = False
    """Set by a starter that knows the process already runs the runtime's serve loop
    (an adopted warmfork spare): the kernel then sends requests without waiting for
    the Hello, which the worker writes before it reads any frame."""
    _exited: trio.Event = field(factory=trio.Event, repr=False)
    _on_exit: list[Callable[[], None]] = field(factory=list, repr=False)

    def on_exit(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (synchronously, on the event loop) once the exit is known:
        cheaper than a task per process awaiting :meth:`wait`. Runs now if it is known."""
        if self._exited.is_set():
            callback()
        else:
            self._on_exit.append(callback)

    @property
    def alive(self) -> bool:
        return not self._exited.is_set()

    async def wait(self) -> int:
        """Wait for exit; return the exit code (as ``os.waitstatus_to_exitcode``)."""
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` unless the exit is already known (pids are not reused before)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def _finish(self, status: int | None, cause: str | None) -> None:
        self.status = status
        self.returncode = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        self.cause = cause
        self._exited.set()
        callbacks, self._on_exit = self._on_exit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("exit callback of pid %s failed", self.pid)


@define(eq=False)
class Seed(WorkerProcess):
    """A seed: a loaded function version that forks instances."""

    async def fork_instance(
        self,
        *,
        entry: str,
        payload: Any,
        channel_fd: int,
        sandbox: Sandbox | None = None,
        info: SpawnInfo | None = None,
        timeout: float = 10.0,
    ) -> WorkerProcess:
        """Fork an instance that runs ``entry(loaded, fd, payload)`` on a dup of ``channel_fd``.

        The caller keeps ``channel_fd`` (close it once this returns).
        """
        if not self.alive:
            raise LauncherError(f"seed {self.pid} of {self.info.function} has exited")
        msg = {"op": "fork_instance", "seed": self.pid, "entry": entry, "payload": payload}
        return await self.launcher._start(msg, "instance", sandbox, info, [channel_fd], timeout)


@define
class _Pending:
    kind: str
    info: SpawnInfo
    sandbox: Sandbox | None
    event: trio.Event = field(factory=trio.Event)
    result: WorkerProcess | None = None
    error: LauncherError | None = None
    abandoned: bool = False


class Launcher:
    """A running launcher process and the connection to it."""

    def __init__(
        self, process: subprocess.Popen[bytes], sock: Any, layers: Sequence[Any], hello: dict
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.hello = hello
        self.layers = list(layers)
        self._sock = sock
        self._raw: socket.socket | None = None
        """The same socket as a (non-blocking) stdlib socket: one syscall per send
        when nothing else is sending, without a trio checkpoint round trip."""
        self._buffer = FrameBuffer()
        self._send_lock = trio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._procs: dict[int, WorkerProcess] = {}
        self._closed = trio.Event()
        self._lane = trio.CapacityLimiter(1)
        """Layers' ``prepare``/``release`` (cgroup mkdir/rmdir: milliseconds of kernel
        time each) run in a worker thread, one at a time, off the event loop."""

    # ---- start and stop ------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        *,
        preload: Sequence[str] = (),
        layers: Sequence[Any] = (),
        config_path: str | os.PathLike[str] | None = None,
        plugins: bool = True,
        layer_factories: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        stderr: int | None = None,
        timeout: float = 30.0,
        nursery: trio.Nursery | None = None,
    ) -> Launcher:
        """Start ``python -m kernel.launcher`` and wait for its hello.

        :param preload: modules to import in the launcher (added to the plugins' own).
        :param layers: the daemon's isolation layers (``prepare``/``release`` run here);
            the launcher loads the same plugins and must report the same layer names.
        :param config_path: the daemon's config file (None: the embedded default).
        :param plugins: False loads no plugins in the launcher (tests).
        :param layer_factories: extra ``module:callable`` layer factories (tests).
        :param env: added to the launcher's clean environment.
        :param nursery: runs the reader task; default: a trio system task.
        """
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [
            python or sys.executable,
            "-m",
            "kernel.launcher",
            "--fd",
            str(child_sock.fileno()),
            "--parent",
            str(os.getpid()),
            "--plugins",
            "config" if plugins else "none",
        ]
        if config_path is not None:
            argv += ["--config", os.fspath(config_path)]
        for spec in layer_factories:
            argv += ["--layer", spec]
        for name in preload:
            argv += ["--preload", name]
        try:
            process = subprocess.Popen(
                argv,
                env={**CLEAN_ENV, **(env or {})},
                pass_fds=[child_sock.fileno()],
                close_fds=True,
                stdin=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            child_sock.close()
        sock = trio.socket.from_stdlib_socket(parent_sock)
        self = cls(process, sock, layers, {})
        self._raw = parent_sock
        try:
            with trio.fail_after(timeout):
                hello = await self._receive_one()
        except trio.TooSlowError:
            process.kill()
            raise LauncherError(f"the launcher did not start within {timeout}s") from None
        if hello is None or not hello.get("ok"):
            process.kill()
            error = (hello or {}).get("error") or f"exited with {process.wait(timeout=5)}"
            raise LauncherError(f"the launcher failed to start: {error}")
        self.hello = hello
        ours = sorted(layer.name for layer in layers)
        theirs = sorted(hello.get("layers", []))
        if ours != theirs:
            process.kill()
            raise LauncherError(
                f"the launcher loaded isolation layers {theirs} but the daemon has {ours}; "
                "start both from the same config and plugin set"
            )
        if nursery is not None:
            nursery.start_soon(self._reader)
        else:
            trio.lowlevel.spawn_system_task(self._reader, name="noslate-launcher-reader")
        return self

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop the launcher: it kills every seed and instance, then exits."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        with trio.move_on_after(timeout):
            while self.process.poll() is None:
                await trio.sleep(0.01)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._on_closed("the launcher was stopped")
        self._sock.close()

    async def __aenter__(self) -> Launcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def statistics(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for proc in self._procs.values():
            kinds[proc.kind] = kinds.get(proc.kind, 0) + 1
        return {"pid": self.pid, "processes": kinds, "pending": len(self._pending), "closed": self.closed}

    # ---- commands ------------------------------------------------------------------

    async def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        pass_fds: Mapping[int, int] | None = None,
        sandbox: Sandbox | None = None,
        info: SpawnInfo | None = None,
        cwd: str | None = None,
        timeout: float = 10.0,
    ) -> WorkerProcess:
        """fork+exec ``argv`` with exactly ``env``; ``pass_fds`` maps child fd -> our fd.

        Returns once ``exec`` succeeded; a failure before it raises LauncherError.
        """
        targets = sorted((pass_fds or {}).items())
        msg = {
            "op": "spawn",
            "argv": list(argv),
            "env": dict(env),
            "cwd": cwd,
            "targets": [t for t, _ in targets],
        }
        return await self._start(msg, "cold", sandbox, info, [fd for _, fd in targets], timeout)

    async def fork_seed(
        self,
        *,
        entry: str,
        payload: Any,
        sandbox: Sandbox | None = None,
        info: SpawnInfo | None = None,
        timeout: float = 60.0,
    ) -> Seed:
        """Fork a seed that runs ``entry(payload)`` under its sandbox, then forks instances.

        Raises :class:`SeedError` with the user's message when ``entry`` raised.
        """
        msg = {"op": "fork_seed", "entry": entry, "payload": payload}
        seed = await self._start(msg, "seed", sandbox, info, [], timeout)
        assert isinstance(seed, Seed)
        return seed

    async def _start(
        self,
        msg: dict[str, Any],
        kind: str,
        sandbox: Sandbox | None,
        info: SpawnInfo | None,
        fds: list[int],
        timeout: float,
    ) -> WorkerProcess:
        if self.closed:
            raise LauncherError("the launcher has exited; the daemon must restart it")
        info = info or SpawnInfo(function="", version="", instance="", role=kind)
        if sandbox is not None:
            sandbox.annotations.setdefault("noslate.role", info.role)
            sandbox.annotations.setdefault("noslate.function", info.function)
            sandbox.annotations.setdefault("noslate.instance", info.instance)
            if self.layers:
                await trio.to_thread.run_sync(self._prepare, sandbox, info, kind, limiter=self._lane)
            # without layers only the title is used (by the child): skip the full
            # OCI conversion on the start path
            msg["sandbox"] = (
                sandbox.to_oci() if self.layers else {"process": {"title": sandbox.process.title}}
            )
        rid = next(self._ids)
        msg["id"] = rid
        pending = self._pending[rid] = _Pending(kind, info, sandbox)
        try:
            await self._send(msg, fds)
            with trio.fail_after(timeout):
                await pending.event.wait()
        except trio.TooSlowError:
            pending.abandoned = True
            raise LauncherError(f"the launcher did not start the {kind} within {timeout}s") from None
        except BaseException:
            pending.abandoned = True
            raise
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    # ---- connection ----------------------------------------------------------------

    async def _send(self, msg: dict[str, Any], fds: Sequence[int] = ()) -> None:
        data = encode(msg, len(fds))
        lock = self._send_lock
        if self._raw is not None and not lock.locked():
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            try:
                sent = self._raw.sendmsg([data], anc) if fds else self._raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise LauncherError(f"the launcher connection failed: {exc}") from exc
            if sent == len(data):
                return
            if sent:  # the descriptors went with the first byte
                data, fds = data[sent:], ()
            lock.acquire_nowait()  # free (checked above, no await since): keeps frames whole
            try:
                await self._send_locked(data, fds)
            finally:
                lock.release()
            return
        async with lock:
            await self._send_locked(data, fds)

    async def _send_locked(self, data: bytes, fds: Sequence[int]) -> None:
        try:
            if fds:
                anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                sent = await self._sock.sendmsg([data], anc)
                data = data[sent:]
            while data:
                sent = await self._sock.send(data)
                data = data[sent:]
        except OSError as exc:
            raise LauncherError(f"the launcher connection failed: {exc}") from exc

    async def _receive_one(self) -> dict[str, Any] | None:
        while True:
            for msg in self._buffer.frames():
                return msg
            data, anc, _flags, _addr = await self._sock.recvmsg(RECV_SIZE, ANC_SIZE, socket.MSG_CMSG_CLOEXEC)
            self._buffer.add(data, fds_from_ancillary(anc))
            if not data:
                return None

    async def _reader(self) -> None:
        reason = "the launcher exited"
        try:
            while True:
                msg = await self._receive_one()
                if msg is None:
                    break
                self._dispatch(msg)
        except Exception as exc:  # never crash the daemon from a system task
            reason = f"the launcher connection failed: {exc}"
            if not self._closed.is_set():  # aclose() closing the socket under us is normal
                log.exception("launcher reader failed")
        finally:
            self._on_closed(reason)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "exit":
            proc = self._procs.pop(msg["pid"], None)
            if proc is not None:
                if self.layers and proc.sandbox is not None:
                    trio.lowlevel.spawn_system_task(self._release_and_finish, proc, msg["status"])
                else:
                    proc._finish(msg["status"], self._release(proc.sandbox, proc.info))
            return
        if op != "reply":
            return
        pending = self._pending.pop(msg["id"], None)
        if pending is None:
            return
        if msg.get("ok"):
            cls = Seed if pending.kind == "seed" else WorkerProcess
            proc = cls(msg["pid"], pending.kind, pending.info, pending.sandbox, self, msg.get("timings", {}))
            proc.report = msg.get("report")
            self._procs[proc.pid] = proc
            pending.result = proc
            if pending.abandoned:
                proc.kill()
        else:
            self._release(pending.sandbox, pending.info)
            if msg.get("error_type") not in (None, "StartError", "SetupError") and pending.kind == "seed":
                pending.error = SeedError(msg.get("error", ""), msg["error_type"])
            else:
                pending.error = LauncherError(msg.get("error") or "the launcher could not start it")
        pending.event.set()

    def _prepare(self, sandbox: Sandbox, info: SpawnInfo, kind: str) -> None:
        """Every layer's ``prepare`` (in the layer lane); on failure release and raise."""
        for layer in self.layers:
            try:
                layer.prepare(sandbox, info)
            except Exception as exc:
                self._release(sandbox, info)
                raise LauncherError(
                    f"isolation layer {layer.name!r} could not prepare "
                    f"{kind} {info.instance or info.function}: {exc}"
                ) from exc

    async def _release_and_finish(self, proc: WorkerProcess, status: int | None) -> None:
        """Release the layers of an exited process off the event loop, then report its exit."""
        cause = None
        try:
            cause = await trio.to_thread.run_sync(self._release, proc.sandbox, proc.info, limiter=self._lane)
        finally:
            proc._finish(status, cause)

    def _release(self, sandbox: Sandbox | None, info: SpawnInfo) -> str | None:
        if sandbox is None:
            return None
        cause = None
        for layer in reversed(self.layers):
            try:
                result = layer.release(sandbox, info)
            except Exception:
                log.exception("isolation layer %s failed to release %s", layer.name, info.instance)
                continue
            cause = cause or result
        return cause

    def _on_closed(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for pending in self._pending.values():
            pending.error = LauncherError(reason)
            pending.event.set()
        self._pending.clear()
        for proc in self._procs.values():
            proc._finish(None, self._release(proc.sandbox, proc.info) or "launcher-exited")
        self._procs.clear()
