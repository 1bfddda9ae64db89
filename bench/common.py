"""Shared helpers of the bench: statistics, figures, processes, HTTP probes, machine info."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEERS = BENCH / ".peers"
RESULTS = BENCH / "results"
VENV_BIN = ROOT / ".venv" / "bin"


class Skip(Exception):
    """A section (or part of one) cannot run here; the message says why."""


# ---- statistics and figures --------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def figure(
    fid: str,
    label: str,
    samples: Sequence[float],
    unit: str,
    better: str = "lower",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One figure: median, min, max (and p99) of ``samples``; baseline and ratio set later."""
    if not samples:
        raise ValueError(f"figure {fid}: no samples")
    vals = [float(v) for v in samples]
    return {
        "id": fid,
        "label": label,
        "unit": unit,
        "better": better,
        "n": len(vals),
        "median": round(statistics.median(vals), 4),
        "min": round(min(vals), 4),
        "max": round(max(vals), 4),
        "p99": round(pct(vals, 0.99), 4),
        "samples": [round(v, 4) for v in vals],
        "baseline": None,
        "ratio": None,
        "goal": None,
        **({"extra": extra} if extra else {}),
    }


def relate(fig: dict[str, Any], base: dict[str, Any] | None) -> None:
    """Set ``fig``'s baseline and ratio (fig median / baseline median) from the same run."""
    if base is None:
        return
    fig["baseline"] = base["id"]
    fig["ratio"] = round(fig["median"] / base["median"], 4) if base["median"] else None


def goal(fig: dict[str, Any], text: str, met: Callable[[dict[str, Any]], bool]) -> None:
    """Attach a goal (e.g. ``ratio >= 0.8``) and whether this run met it."""
    try:
        ok = bool(met(fig))
    except (TypeError, KeyError):
        ok = False
    fig["goal"] = {"text": text, "met": ok}


def brief(exc: BaseException, limit: int = 400) -> str:
    """A long error message cut in the middle (its start says what, its end often why)."""
    text = str(exc)
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + " ... " + text[-half:]


def section(name: str, figures: list[dict[str, Any]], notes: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "figures": figures, "notes": notes or []}


def skipped(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "figures": [], "notes": [], "skipped": reason}


# ---- processes ------------------------------------------------------------------------------


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A small explicit environment for children (no NODE_EXTRA_CA_CERTS, no NOSLATE_*)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv: list[str], env: dict[str, str], cwd: Path | None = None, log: Path | None = None) -> Any:
    """Start ``argv`` in its own process group (stdout/stderr to ``log`` or /dev/null)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def kill_group(proc: Any, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Signal the process group we started and reap the leader."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


# ---- HTTP probes (raw sockets: cheap and exact) -------------------------------------------


def _request_bytes(host: str, path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()


def read_response(
    sock: socket.socket, buf: bytearray, headers_out: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (content-length or chunked) from ``sock``; returns
    (status, body) and fills ``headers_out`` (lower-case names) when given."""

    def fill() -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf.extend(chunk)

    while b"\r\n\r\n" not in buf:
        fill()
    head, _, _ = bytes(buf).partition(b"\r\n\r\n")
    del buf[: len(head) + 4]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if headers_out is not None:
        headers_out.update(headers)
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            fill()
        body = bytes(buf[:n])
        del buf[:n]
        return status, body
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                fill()
            line, _, _ = bytes(buf).partition(b"\r\n")
            del buf[: len(line) + 2]
            size = int(line.split(b";")[0], 16)
            while len(buf) < size + 2:
                fill()
            body.extend(buf[:size])
            del buf[: size + 2]
            if size == 0:
                return status, bytes(body)
    return status, b""


class KeepAlive:
    """One keep-alive HTTP/1.1 connection; ``get`` returns (status, body, seconds)."""

    def __init__(self, port: int, host_header: str, timeout: float = 30.0) -> None:
        self.port, self.host, self.timeout = port, host_header, timeout
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def get(self, path: str = "/", host: str | None = None) -> tuple[int, bytes, float]:
        headers: dict[str, str] = {}
        t0 = time.perf_counter()
        self.sock.sendall(_request_bytes(host or self.host, path))
        status, body = read_response(self.sock, self.buf, headers)
        elapsed = time.perf_counter() - t0
        if headers.get("connection", "").lower() == "close":  # e.g. hypercorn's request cap
            self.close()
            self._connect()
        return status, body, elapsed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def first_200(port: int, host: str, t0: float, proc: Any, timeout: float = 20.0) -> float:
    """Poll connect + GET every 0.5 ms until a 200; seconds since ``t0`` (perf_counter)."""
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(_request_bytes(host))
                status, _ = read_response(s, bytearray())
                if status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.0005)
    raise TimeoutError(f"no 200 from 127.0.0.1:{port} within {timeout} s")


def wait_port(port: int, timeout: float = 20.0, proc: Any = None) -> None:
    """Wait until something answers HTTP 200 on ``port``."""
    first_200(port, "localhost", time.perf_counter(), proc, timeout)


# ---- memory -----------------------------------------------------------------------------------


def smaps_rollup(pid: int) -> dict[str, int]:
    """Pss, Rss and private (clean + dirty) memory of ``pid`` in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    return {
        "pss_kib": out.get("Pss", 0),
        "rss_kib": out.get("Rss", 0),
        "private_kib": out.get("Private_Clean", 0) + out.get("Private_Dirty", 0),
    }


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


CpuTree = dict[int, tuple[float, float]]
"""Depth below a process -> (own CPU ms, CPU ms of reaped children)."""


def tree_cpu_ms(pid: int) -> CpuTree:
    """CPU milliseconds by depth below ``pid`` (0 = ``pid`` itself): (the processes' own
    time, the time of the children they have reaped), from ``/proc/<pid>/stat``."""
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    depth: dict[int, int] = {}
    out: CpuTree = {}
    for p in tree_pids(pid):  # parents come before their children
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        level = depth[p] = 0 if p == pid else depth.get(int(fields[1]), -1) + 1
        own, reaped = out.get(level, (0.0, 0.0))
        out[level] = (
            own + (int(fields[11]) + int(fields[12])) * tick,
            reaped + (int(fields[13]) + int(fields[14])) * tick,
        )
    return out


def cpu_delta(before: CpuTree, after: CpuTree) -> dict[int, float]:
    """Per depth, the CPU milliseconds spent between two :func:`tree_cpu_ms` snapshots:
    a child reaped in between moves from its own depth into its parent's reaped time, so
    depth ``d`` here is its processes' own time plus what depth ``d - 1`` reaped."""
    out: dict[int, float] = {}
    for level in set(before) | set(after):
        own = after.get(level, (0.0, 0.0))[0] - before.get(level, (0.0, 0.0))[0]
        reaped = after.get(level - 1, (0.0, 0.0))[1] - before.get(level - 1, (0.0, 0.0))[1]
        out[level] = own + reaped
    deepest = max(out, default=0) + 1
    reaped = after.get(deepest - 1, (0.0, 0.0))[1] - before.get(deepest - 1, (0.0, 0.0))[1]
    if reaped:
        out[deepest] = reaped
    return out


# ---- provenance ------------------------------------------------------------------------------


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1048576, 1),
        "python": platform.python_version(),
        "loadavg": list(os.getloadavg()),
    }


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
