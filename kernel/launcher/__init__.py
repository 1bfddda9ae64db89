"""The launcher: one single-threaded helper process that forks every worker process.

The daemon side is :mod:`kernel.launcher.client` (``Launcher``, ``Seed``,
``WorkerProcess``); the process itself is ``python -m kernel.launcher``
(:mod:`kernel.launcher.server`, :mod:`kernel.launcher.seed`). Design and wire format:
``docs/warmfork.md``. Importing this package does not import trio, so the launcher
process stays lean.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Launcher", "LauncherError", "Seed", "WorkerProcess"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kernel.launcher import client

        return getattr(client, name)
    raise AttributeError(name)
