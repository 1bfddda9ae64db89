"""The cluster tests' PostgreSQL servers (bench/pgserver.py, shared with the bench)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # bench/ at the repository root
    sys.path.insert(0, _ROOT)

from bench.pgserver import Postgres, pg_bin  # noqa: E402

__all__ = ["Postgres", "pg_bin"]
