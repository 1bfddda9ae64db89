"""The launcher's event loop: serve the daemon's commands, fork, attach, reap, report.

Single-threaded by design (forking a multi-threaded process is unsafe), built on
``selectors``. Commands (daemon -> launcher) and events (launcher -> daemon) are
documented in ``docs/warmfork.md``. Every start command gets exactly one ``reply``;
a process's ``exit`` event is sent only after its successful reply, and a failed
start is replied to only once the process is gone (so the daemon can release its
cgroup). The launcher is a child subreaper: instances whose seed died are reparented
here, reaped here and reported like any other.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from attrs import define, field

from kernel.launcher import child
from kernel.launcher.memo import SandboxMemo
from kernel.launcher.seed import run_seed
from kernel.launcher.wire import Conn
from kernel.sandbox import PHASES, Sandbox

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


@define
class Proc:
    """A process the launcher started (or learnt of from a seed)."""

    pid: int
    kind: str
    """``cold``, ``seed`` or ``instance``."""
    rid: int
    seed: int | None = None
    replied: bool = False
    error: str | None = None
    error_type: str = "StartError"
    exit_status: int | None = None
    conn: Conn | None = None
    err_fd: int | None = None
    err_data: bytes = b""
    timings: dict[str, float] = field(factory=dict)
    report: Any = None
    """A seed's ``ready`` report (the runtime's ``seed_report``), passed on as it is."""
    forks: dict[int, tuple[Any, int | None, float]] = field(factory=dict)
    """Seeds: pending fork id -> (sandbox, gate write end, start time)."""
    memo: SandboxMemo | None = None
    """Seeds: rebuilds their instances' sandboxes from memoised parts."""


class Server:
    """Owns the launcher's children and talks to the daemon over ``conn``."""

    def __init__(self, conn: Conn, layers: Sequence[Any]) -> None:
        self.conn = conn
        self.layers = sorted(layers, key=lambda layer: PHASES.index(layer.phase))
        self.pid = os.getpid()
        self.procs: dict[int, Proc] = {}
        self.ns_pids: dict[tuple[int, int], int] = {}
        """(seed pid, pid inside the seed's pid namespace) -> host pid (isolation_namespaces)."""
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.selector.register(conn.sock, selectors.EVENT_READ, ("daemon", None))

    def _on_term(self, *_: Any) -> None:
        self.stopping = True

    # ---- loop ----------------------------------------------------------------------

    def run(self) -> NoReturn:
        while True:
            for key, _ in self.selector.select():
                kind, proc = key.data
                if kind == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 4096):
                            pass
                    self.reap()
                elif kind == "daemon":
                    self.on_daemon()
                elif kind == "seed":
                    self.on_seed(proc)
                elif kind == "err":
                    self.on_err_pipe(proc)
            if self.stopping:
                self.shutdown()

    def on_daemon(self) -> None:
        try:
            frames = self.conn.receive()
        except OSError:
            frames = None
        if frames is None:
            self.shutdown()
        for msg in frames:
            op = msg.get("op")
            try:
                if op == "spawn":
                    self.spawn(msg)
                elif op == "fork_seed":
                    self.fork_seed(msg)
                elif op == "fork_instance":
                    self.fork_instance(msg)
                elif op == "kill":
                    self.kill(msg["pid"], msg.get("sig", signal.SIGKILL))
                elif op == "ping":
                    self.send({"op": "reply", "id": msg["id"], "ok": True, "pid": self.pid})
                else:
                    self.send(
                        {
                            "op": "reply",
                            "id": msg.get("id", 0),
                            "ok": False,
                            "error": f"unknown launcher command {op!r}",
                        }
                    )
            except Exception as exc:
                for fd in msg.get("fds", []):
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self.send(
                    {
                        "op": "reply",
                        "id": msg.get("id", 0),
                        "ok": False,
                        "error": f"launcher could not {op}: {child.describe(exc)}",
                    }
                )

    def send(self, msg: dict[str, Any]) -> None:
        try:
            self.conn.send(msg)
        except OSError:
            self.shutdown()

    # ---- commands ------------------------------------------------------------------

    def _gate(self) -> tuple[int, int] | tuple[None, None]:
        return os.pipe2(os.O_CLOEXEC) if self.layers else (None, None)

    def spawn(self, msg: dict[str, Any]) -> None:
        argv: list[str] = msg["argv"]
        env: dict[str, str] = msg.get("env") or {}
        path = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", DEFAULT_PATH))
        if path is None:
            raise FileNotFoundError(f"program {argv[0]!r} not found on PATH")
        sandbox = Sandbox.from_oci(msg["sandbox"]) if msg.get("sandbox") else None
        targets: list[int] = msg.get("targets", [])
        fds: list[int] = msg["fds"]
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        gate_r, gate_w = self._gate()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            self._spawn_child(path, argv, env, msg.get("cwd"), fds, targets, err_w, gate_r, sandbox)
        os.close(err_w)
        for fd in (*fds, *([gate_r] if gate_r is not None else [])):
            os.close(fd)
        proc = Proc(pid, "cold", msg["id"], err_fd=err_r)
        proc.timings["fork_ms"] = (time.perf_counter() - started) * 1000
        self.procs[pid] = proc
        self.selector.register(err_r, selectors.EVENT_READ, ("err", proc))
        self._attach_and_open(proc, sandbox, gate_w)

    def _spawn_child(
        self,
        path: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
        fds: list[int],
        targets: list[int],
        err_w: int,
        gate_r: int | None,
        sandbox: Sandbox | None,
    ) -> NoReturn:
        step = "set-up"
        try:
            child.reset_signals()
            child.die_with_parent(self.pid)
            step = "passing descriptors"
            import fcntl

            high = max([10, *targets, *fds, err_w, *([gate_r] if gate_r is not None else [])]) + 1
            err_w = fcntl.fcntl(err_w, fcntl.F_DUPFD_CLOEXEC, high)
            if gate_r is not None:
                gate_r = fcntl.fcntl(gate_r, fcntl.F_DUPFD_CLOEXEC, high)
            moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, high) for fd in fds]
            for src, target in zip(moved, targets, strict=True):
                os.dup2(src, target, inheritable=True)
            keep = {0, 1, 2, *targets, err_w, *([gate_r] if gate_r is not None else [])}
            child.close_all_except(keep)
            step = "waiting for attach"
            child.wait_gate(gate_r)
            step = "isolation"
            if sandbox is not None:
                child.apply_layers(self.layers, sandbox, instance=False)
            child.die_with_parent(self.pid)
            child.set_title(sandbox)
            if cwd:
                os.chdir(cwd)
            step = "exec"
            os.execve(path, argv, env)
        except BaseException as exc:
            child.fail(f"{step}: {child.describe(exc)}", err_w)
        os._exit(child.EXIT_SETUP_FAILED)

    def fork_seed(self, msg: dict[str, Any]) -> None:
        sandbox = Sandbox.from_oci(msg["sandbox"]) if msg.get("sandbox") else None
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        gate_r, gate_w = self._gate()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            parent_sock.close()
            run_seed(child_sock, gate_r, msg["entry"], msg.get("payload"), sandbox, self.layers, self.pid)
        child_sock.close()
        if gate_r is not None:
            os.close(gate_r)
        proc = Proc(pid, "seed", msg["id"], conn=Conn(parent_sock))
        proc.timings["fork_ms"] = (time.perf_counter() - started) * 1000
        proc.timings["t0"] = started
        self.procs[pid] = proc
        self.selector.register(parent_sock, selectors.EVENT_READ, ("seed", proc))
        self._attach_and_open(proc, sandbox, gate_w)

    def fork_instance(self, msg: dict[str, Any]) -> None:
        seed = self.procs.get(msg["seed"])
        if seed is None or seed.kind != "seed" or not seed.replied or seed.conn is None:
            raise LookupError(f"no running seed with pid {msg['seed']}")
        channel = msg["fds"][0]
        gate_r, gate_w = self._gate()
        fds = [channel] if gate_r is None else [channel, gate_r]
        forward = {
            "op": "fork",
            "id": msg["id"],
            "entry": msg["entry"],
            "payload": msg.get("payload"),
            "sandbox": msg.get("sandbox"),
            "gate": gate_r is not None,
        }
        try:
            seed.conn.send(forward, fds)
        finally:
            for fd in fds:
                os.close(fd)
        sandbox = None
        if msg.get("sandbox") and self.layers:  # for attach; most of it equals the last fork's
            if seed.memo is None:
                seed.memo = SandboxMemo()
            sandbox = seed.memo.build(msg["sandbox"])
        seed.forks[msg["id"]] = (sandbox, gate_w, time.perf_counter())

    def kill(self, pid: int, sig: int) -> None:
        if pid in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    # ---- start bookkeeping ---------------------------------------------------------

    def _attach_and_open(self, proc: Proc, sandbox: Sandbox | None, gate_w: int | None) -> None:
        """Attach the new process to the layers, then let it run (or kill it)."""
        started = time.perf_counter()
        try:
            if sandbox is not None:
                for layer in self.layers:
                    layer.attach(sandbox, proc.pid)
        except Exception as exc:
            proc.error = f"attaching {proc.kind} pid {proc.pid} failed: {child.describe(exc)}"
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            if gate_w is not None:
                os.close(gate_w)
            return
        proc.timings["attach_ms"] = (time.perf_counter() - started) * 1000
        if gate_w is not None:
            with contextlib.suppress(OSError):
                os.write(gate_w, b"g")
            os.close(gate_w)

    def start_ok(self, proc: Proc) -> None:
        proc.replied = True
        timings = {k: round(v, 3) for k, v in proc.timings.items() if k != "t0"}
        self.send(
            {"op": "reply", "id": proc.rid, "ok": True, "pid": proc.pid, "timings": timings,
             "report": proc.report}
        )  # fmt: skip
        if proc.exit_status is not None:
            self.report_exit(proc)

    def start_failed(self, proc: Proc) -> None:
        self.procs.pop(proc.pid, None)
        status = proc.exit_status
        error = proc.error or f"{proc.kind} exited ({describe_status(status or 0)}) before it was ready"
        self.send(
            {
                "op": "reply",
                "id": proc.rid,
                "ok": False,
                "pid": proc.pid,
                "error": error,
                "error_type": proc.error_type,
                "status": status,
            }
        )

    def report_exit(self, proc: Proc) -> None:
        self.procs.pop(proc.pid, None)
        self.send({"op": "exit", "pid": proc.pid, "status": proc.exit_status})

    def exited(self, pid: int, status: int) -> None:
        proc = self.procs.get(pid)
        if proc is None:
            return
        proc.exit_status = status
        if proc.kind == "seed":
            self._drain_seed(proc)
            self._drop_seed_conn(proc)
        if proc.replied:
            self.report_exit(proc)
        elif proc.err_fd is None:
            self.start_failed(proc)

    # ---- events --------------------------------------------------------------------

    def on_err_pipe(self, proc: Proc) -> None:
        assert proc.err_fd is not None
        data = os.read(proc.err_fd, 8192)
        if data:
            proc.err_data += data
            return
        self.selector.unregister(proc.err_fd)
        os.close(proc.err_fd)
        proc.err_fd = None
        if proc.err_data:
            proc.error = f"cannot start {proc.pid}: {proc.err_data.decode('utf-8', 'replace')}"
        if proc.error is None and proc.pid in self.procs:
            self.start_ok(proc)
        elif proc.exit_status is not None:
            self.start_failed(proc)

    def on_seed(self, seed: Proc) -> None:
        assert seed.conn is not None
        try:
            frames = seed.conn.receive()
        except OSError:
            frames = None
        if frames is None:
            self._drop_seed_conn(seed)
            return
        for msg in frames:
            op = msg.get("op")
            if op == "ready":
                seed.timings["load_ms"] = msg.get("load_ms", 0.0)
                seed.timings["huge_pages"] = msg.get("huge_pages", 0)
                seed.timings["ready_ms"] = (time.perf_counter() - seed.timings["t0"]) * 1000
                seed.report = msg.get("report")
                if seed.error is None:
                    self.start_ok(seed)
            elif op == "failed":
                seed.error = msg.get("error", "seed failed")
                seed.error_type = msg.get("error_type", "StartError")
            elif op == "forked":
                self.on_forked(seed, msg["id"], self._host_pid(seed, msg["pid"]), msg.get("fork_ms", 0.0))
            elif op == "exit":
                self.exited(self.ns_pids.pop((seed.pid, msg["pid"]), msg["pid"]), msg["status"])

    def _host_pid(self, seed: Proc, pid: int) -> int:
        """A seed in its own pid namespace reports inner pids: ask the layers for the host pid."""
        for layer in self.layers:
            translate = getattr(layer, "host_pid", None)
            if translate is not None:
                host = translate(seed.pid, pid)
                if host != pid:
                    self.ns_pids[(seed.pid, pid)] = host
                    return host
        return pid

    def on_forked(self, seed: Proc, rid: int, pid: int, syscall_ms: float = 0.0) -> None:
        sandbox, gate_w, started = seed.forks.pop(rid, (None, None, time.perf_counter()))
        proc = Proc(pid, "instance", rid, seed=seed.pid)
        proc.timings["fork_ms"] = (time.perf_counter() - started) * 1000
        proc.timings["seed_fork_ms"] = syscall_ms
        self.procs[pid] = proc
        self._attach_and_open(proc, sandbox, gate_w)
        if proc.error is None:
            self.start_ok(proc)

    def _drain_seed(self, seed: Proc) -> None:
        """Read what a dead seed sent before it died (its error, its last exits)."""
        if seed.conn is None:
            return
        seed.conn.sock.setblocking(False)
        with contextlib.suppress(OSError):
            while seed.conn is not None:
                self.on_seed(seed)

    def _drop_seed_conn(self, seed: Proc) -> None:
        if seed.conn is None:
            return
        self.selector.unregister(seed.conn.sock)
        seed.conn.close()
        seed.conn = None
        for rid, (_sb, gate_w, _t) in seed.forks.items():
            if gate_w is not None:
                os.close(gate_w)
            self.send({"op": "reply", "id": rid, "ok": False, "error": f"seed {seed.pid} exited"})
        seed.forks.clear()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            self.exited(pid, status)
        seeds = {p.pid for p in self.procs.values() if p.kind == "seed"}
        for proc in list(self.procs.values()):
            if proc.kind == "instance" and proc.seed not in seeds:
                try:
                    os.kill(proc.pid, 0)
                except ProcessLookupError:  # reaped by its seed, report lost with it
                    self.exited(proc.pid, signal.SIGKILL)

    # ---- no orphans ----------------------------------------------------------------

    def shutdown(self) -> NoReturn:
        """The daemon is gone or asked us to stop: kill every descendant, reap, exit."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            victims = set(self.procs) | set(children_of(self.pid))
            for pid in victims:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                while True:
                    pid, _status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
                    self.procs.pop(pid, None)
            except ChildProcessError:
                if not children_of(self.pid):
                    break
            time.sleep(0.005)
        os._exit(0)


def children_of(ppid: int) -> list[int]:
    """Pids whose parent is ``ppid`` (includes orphans reparented to this subreaper)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == ppid:
            out.append(int(name))
    return out
