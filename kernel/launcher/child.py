"""What a freshly forked child does before it runs anything of its own.

Everything here runs in a single-threaded fork of the launcher or of a seed and must
leave only through ``os._exit`` (never unwind into the parent's loop).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import prctl

from kernel.sandbox import PHASES, Sandbox

INSTANCE_PHASES = frozenset({"cgroup", "rlimits"})
"""Phases whose layers are applied again inside a forked instance (the seed applied the
rest already; an unprivileged instance could not apply them twice). A layer overrides
this with a boolean attribute ``apply_in_instances``."""

EXIT_SETUP_FAILED = 126


def resolve(entry: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    module, _, name = entry.partition(":")
    if not module or not name:
        raise ValueError(f"entry {entry!r} must look like 'package.module:function'")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"entry {entry!r} is not callable")
    return obj


def open_fds() -> list[int]:
    """Descriptors open in this process."""
    return sorted(int(n) for n in os.listdir("/proc/self/fd"))


def close_all_except(keep: Iterable[int]) -> None:
    """Close every descriptor not in ``keep`` (ranges, so it costs a few syscalls)."""
    low = 0
    for fd in sorted(set(keep)):
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, 1 << 20)


def reset_signals() -> None:
    """Undo the parent's signal set-up: default handlers, no wake-up fd."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def reset_seed_signals() -> None:
    """In an instance forked from a seed: undo only what the seed changed (its SIGCHLD
    handler and wake-up fd); the rest was reset when the seed started. Cheaper than
    :func:`reset_signals` (fewer pages written after the fork)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies; exit now if it already has."""
    prctl.set_pdeathsig(signal.SIGKILL)
    # 0: the parent is outside our pid namespace (isolation_namespaces' stand-in)
    if os.getppid() not in (parent, 0):
        os._exit(EXIT_SETUP_FAILED)


def wait_gate(fd: int | None) -> None:
    """Block until the parent has attached us (cgroups): one byte, or EOF = abort."""
    if fd is None:
        return
    data = os.read(fd, 1)
    os.close(fd)
    if not data:
        os._exit(EXIT_SETUP_FAILED)


def apply_layers(layers: Sequence[Any], sandbox: Sandbox, *, instance: bool) -> None:
    """Run the layers' ``apply`` in PHASES order (instances: only instance phases)."""
    for layer in sorted(layers, key=lambda layer: PHASES.index(layer.phase)):
        if instance and not applies_in_instances(layer):
            continue
        try:
            layer.apply(sandbox)
        except Exception as exc:
            raise SetupError(f"isolation layer {layer.name!r} ({layer.phase}) failed: {exc}") from exc


def applies_in_instances(layer: Any) -> bool:
    """Whether ``layer.apply`` runs again inside a forked instance."""
    return bool(getattr(layer, "apply_in_instances", layer.phase in INSTANCE_PHASES))


def oci_title(raw: dict[str, Any] | None) -> str:
    """The process title of OCI sandbox data, without building a Sandbox."""
    process = (raw or {}).get("process") or {}
    return str(process.get("title") or "")


def set_title(sandbox: Sandbox | str | None) -> None:
    title = sandbox if isinstance(sandbox, str) else sandbox.process.title if sandbox is not None else ""
    if title:
        try:
            prctl.set_name(title[-15:])
            prctl.set_proctitle(title)
        except Exception:
            pass


class SetupError(Exception):
    """A child could not be set up (layer, fd, import); the message says which step."""


def fail(message: str, report_fd: int | None = None) -> None:
    """Report a set-up failure and leave (never returns)."""
    data = message.encode("utf-8", "replace")[:8192]
    try:
        if report_fd is not None:
            os.write(report_fd, data)
        else:
            os.write(2, b"noslate launcher child: " + data + b"\n")
    finally:
        os._exit(EXIT_SETUP_FAILED)


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (no traceback: it may hold host paths)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def print_traceback() -> None:
    try:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
    except Exception:
        pass
