"""The V8 engine (STPyV8), imported once per process with the right flags.

V8 flags are frozen at the first context: they must be set before ``import STPyV8``.
``--single-threaded`` keeps V8 from starting platform threads, so the process can be
forked safely (measured: without it forked children run GC-heavy code 3x slower and
may deadlock). The launcher imports :mod:`plugins.runtime_v8.preload`, which calls
:func:`engine` with the configured flags.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import ModuleType

BASE_FLAGS = ("--single-threaded",)
"""Flags every process gets (forking depends on them)."""

SEED_FLAGS = ("--no-lazy",)
"""Flags of the launcher (zygote), i.e. of every seed and forked instance: compile every
function when its script is compiled, in the seed, so forked instances share the
bytecode instead of each compiling the request path on its first request (measured:
the first request's CPU in a fresh fork 3.2 -> 1.5 ms; the seed loads ~40 ms slower
and holds ~4 MB more, shared by all its instances). Cold workers do not get them."""

configured_flags: tuple[str, ...] = ()
"""Extra flags from ``[plugins.runtime_v8] v8_flags`` (set by the plugin's configure hook)."""

_applied: tuple[str, ...] | None = None


def engine(extra: Sequence[str] = ()) -> ModuleType:
    """Return the STPyV8 module, importing it with ``BASE_FLAGS + extra`` the first time.

    Flags asked for after the engine was imported are ignored (V8 cannot change them):
    :func:`applied_flags` tells which ones are in force.
    """
    global _applied
    if _applied is None:
        # STPyV8's platform set-up reads $HOME (std::string from getenv: NULL aborts);
        # launchers and cold workers run with a clean environment.
        os.environ.setdefault("HOME", "/nonexistent")
        import _STPyV8

        flags = (*BASE_FLAGS, *configured_flags, *extra)
        _STPyV8.JSEngine.setFlags(" ".join(flags))
        _applied = tuple(flags)
    import STPyV8

    return STPyV8


def applied_flags() -> tuple[str, ...]:
    """The V8 flags in force in this process (empty before :func:`engine`)."""
    return _applied or ()


def imported() -> bool:
    """True once STPyV8 is imported in this process (by us or anyone)."""
    return "STPyV8" in sys.modules
