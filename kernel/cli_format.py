"""Output helpers of the CLI: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def print_json(data: Any) -> None:
    """Pretty JSON on stdout (what ``--json`` prints)."""
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def table(headers: list[str], rows: list[list[str]]) -> None:
    """Print left-aligned columns; the last column is not padded."""
    if not rows:
        print("(none)")
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
        print("  ".join([*cells, str(row[-1])]).rstrip())


def fmt_time(ts: Any) -> str:
    """A UNIX time as local ``YYYY-MM-DD HH:MM:SS`` ('' when unknown)."""
    if not isinstance(ts, (int, float)) or ts <= 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def fmt_age(ts: Any) -> str:
    """Time since a UNIX time, e.g. ``42s``, ``3m10s``, ``2h5m``."""
    if not isinstance(ts, (int, float)) or ts <= 0:
        return ""
    secs = max(0, int(time.time() - ts))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60}s"
    return f"{secs // 3600}h{secs % 3600 // 60}m"
