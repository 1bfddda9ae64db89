"""``fork()`` without CPython's after-fork work, for seeds forking instances.

``os.fork()`` runs ``PyOS_AfterFork_Child`` in the child: it re-creates the runtime's
locks and runs every ``os.register_at_fork`` hook (``threading._after_fork``,
``logging``'s lock re-init, ``random``'s reseed, ...). That is Python code running
for the first time in a fresh copy-on-write process: every object and code object it
touches is copied. Measured in a runtime_v8 seed: 255 page faults before the child
runs a line of its own with ``os.fork()``, 48 with :func:`fork` (about 0.9 ms of CPU
per instance on these hosts, where a fault costs 3-5 us).

All that work exists for processes with other threads (locks they held, thread
states to drop). A seed is single-threaded (``--single-threaded`` V8, no Python
threads, forks only from its main loop), so the child is a consistent copy of the one
thread that called ``fork``; the C library's own ``pthread_atfork`` handlers still run.
The one at-fork hook kept is ``random``'s reseed (instances never share a Python
PRNG sequence); ``threading`` keeps the seed's native thread id. When the process
has other threads, :func:`fork` is ``os.fork()``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

_libc = ctypes.PyDLL(None, use_errno=True)
"""``PyDLL``: the call keeps the GIL, so the child holds it as the parent did."""
_fork = _libc.fork
_fork.restype = ctypes.c_int
_fork.argtypes = []


ENGINE_THREADS = (b"V8 ",)
"""``comm`` prefixes of engine threads that hold no Python state."""


def single_threaded() -> bool:
    """True when no thread but this one can hold a Python-level lock: no other Python
    thread, and no other OS thread except the engine's idle platform workers (STPyV8
    starts one ``V8 DefaultWorker`` even with ``--single-threaded``; V8 posts it no
    work then, and it is not copied into the child either way)."""
    if threading.active_count() != 1:
        return False
    tasks = os.listdir("/proc/self/task")
    if len(tasks) == 1:
        return True
    me = str(threading.get_native_id())
    for tid in tasks:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/comm", "rb") as f:
                if not f.read().startswith(ENGINE_THREADS):
                    return False
        except FileNotFoundError:  # it just exited
            continue
    return True


def fork() -> int:
    """``fork()``: 0 in the child, the child's pid in the parent (see the module doc)."""
    if not single_threaded():
        return os.fork()
    pid = _fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if pid == 0:
        random = sys.modules.get("random")
        if random is not None:  # the one at-fork hook kept: no shared Python PRNG
            random._inst.seed()
    return pid
