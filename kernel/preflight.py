"""Start-up checks that fail fast with a clear message, before any worker starts.

- One daemon per state directory: an exclusive ``flock`` on ``STATE_DIR/daemon.lock``
  (released by the kernel when the process exits, even after ``kill -9``).
- Listener addresses that are already taken are reported by name and key, instead of
  hypercorn's bare ``[Errno 98]`` after the launcher and seeds have started.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from kernel.errors import StartupError

LOCK_NAME = "daemon.lock"


def claim_state_dir(state_dir: Path) -> int:
    """Lock ``state_dir`` for this process; the lock's fd (keep it open while serving)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StartupError(
            f"cannot use state directory {state_dir}: {exc.strerror}; "
            "choose another with --state-dir DIR or [server] state_dir"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StartupError(
            f"another noslate daemon (pid {owner}) is using state directory {state_dir}; "
            "stop it first, or give this one its own --state-dir DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_state_dir(fd: int) -> None:
    """Drop the lock taken by :func:`claim_state_dir`."""
    with contextlib.suppress(OSError):
        os.close(fd)


def check_bind(bind: str, key: str, flag: str) -> None:
    """Raise StartupError when ``HOST:PORT`` cannot be bound (port 0 and unix: are skipped)."""
    if bind.startswith("unix:"):
        return
    host, _, port = bind.rpartition(":")
    if int(port) == 0:
        return
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve {key} host {host!r} ({bind}): {exc.strerror}") from exc
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"{key} address {bind} is already in use (another noslate serve, or another "
                    f"program); stop it, or choose a free address with {flag} HOST:PORT "
                    f"or {key} in the config (port 0 picks a free port)"
                ) from exc
            raise StartupError(f"cannot listen on {bind} ({key}): {exc.strerror}") from exc
