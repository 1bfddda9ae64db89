"""A worker process a runtime started itself, without the daemon's launcher.

Runtimes fall back to this when no launcher is running (tools, tests); it adapts a
``trio.Process`` to :class:`kernel.interfaces.WorkerProcess`.
"""

from __future__ import annotations

import contextlib
import os
import signal

import trio


class LocalProcess:
    """A :class:`~kernel.interfaces.WorkerProcess` backed by a ``trio.Process``."""

    def __init__(self, proc: trio.Process) -> None:
        self._proc = proc
        self.pid = proc.pid

    async def wait(self) -> int:
        return await self._proc.wait()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
