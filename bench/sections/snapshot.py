"""snapshot: start to first response with and without the runtime_node startup snapshot.

Measured like coldstart (a disposable function: every request starts an instance) with
profile ``runtime = "nodejs"``; skipped until the runtime_node plugin exists.
"""

from __future__ import annotations

from typing import Any

from bench.common import Skip
from bench.context import Context
from bench.ours import plugin_available


def run(ctx: Context) -> dict[str, Any]:
    if not plugin_available("runtime_node"):
        raise Skip("runtime_node plugin not built yet (plugins/runtime_node/plugin.py is missing)")
    raise Skip("runtime_node exists but exposes no documented snapshot on/off switch for the bench yet")
