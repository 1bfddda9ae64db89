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


ICU_MAGIC = b"\xda\x27"
"""Bytes 2-3 of ICU's common data header (after glibc's 16-byte chunk header)."""


def share_icu_data() -> int:
    """Remap V8's in-memory ICU data (10 MB, read with ``new char[]``) as a private
    mapping of a memfd holding the same bytes, at the same address; return its size.

    Same contents, same address, still copy-on-write, but file-backed: ``fork()`` does
    not copy the page-table entries of a file mapping nobody wrote to, so every seed
    and instance forked from the zygote (and every instance's exit) stops paying for
    2,500 of them (measured: a seed's ``fork()`` ~30% faster, 10 MB less anonymous
    memory per seed). Called once in the launcher after :func:`engine`, while it is
    single-threaded; does nothing when the data is not found or anything fails.
    """
    import ctypes
    import mmap

    try:
        region = _find_icu_region()
        if region is None:
            return 0
        start, size = region
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        fd = os.memfd_create("noslate-icu", os.MFD_CLOEXEC)
        try:
            view = memoryview(ctypes.string_at(start, size))
            while view:
                view = view[os.write(fd, view) :]
            map_fixed = 0x10
            prot = mmap.PROT_READ | mmap.PROT_WRITE
            if libc.mmap(start, size, prot, mmap.MAP_PRIVATE | map_fixed, fd, 0) != start:
                return 0
        finally:
            os.close(fd)
        return size
    except Exception:
        return 0


def _find_icu_region() -> tuple[int, int] | None:
    """The mmapped malloc chunk that holds ICU's common data (header after 16 bytes)."""
    import ctypes
    import mmap

    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 5 or parts[1] != "rw-p":
                continue  # named (file, [heap], [stack]) or not read-write private
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if end - start < (4 << 20):
                continue
            head = ctypes.string_at(start, 64)
            if head[18:20] == ICU_MAGIC and b"CmnD" in head:
                # only glibc's mmapped chunk (its size word, flag bits masked): the
                # kernel may have merged the next anonymous mapping (e.g. a pymalloc
                # arena with live objects) into the same VMA, and remapping that too
                # would revert writes made after the copy (seen as a segfault)
                chunk = int.from_bytes(head[8:16], "little") & ~7
                if chunk <= 0 or chunk % mmap.PAGESIZE or chunk > end - start:
                    return None
                return start, chunk
    return None
