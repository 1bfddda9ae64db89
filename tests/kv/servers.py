"""The KV tests' Redis and Valkey servers (bench/kvservers.py, shared with the bench)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # bench/ at the repository root
    sys.path.insert(0, _ROOT)

from bench.kvservers import KVServer, binary  # noqa: E402

__all__ = ["KVServer", "binary"]
