"""Warm-up requests (profile ``worker.warmup``): what runtimes send and how they answer.

A runtime that supports warm-up sends each request of ``worker.warmup`` to the
user's handler before the process serves (runtime_v8: in the warmfork seed, so forks
inherit compiled code; runtime_node: in the snapshot build). Nothing of a warm-up can
reach the outside: its responses are dropped, every KV and Cache call goes to a
private scratch store (:class:`ScratchStore`, empty at the start and discarded at the
end) and every outbound ``fetch`` gets a 503 answer without leaving the process.
Requests carry the header ``noslate-warmup: 1`` so code can tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernel.profile import FunctionProfile

HEADER = "noslate-warmup"
ORIGIN = "http://localhost"
"""Scheme and host of a warm-up request's URL (``http://localhost/path``)."""
FETCH_STATUS = 503
FETCH_TEXT = "outbound fetch is not available during warm-up"


def request(
    path: str, method: str = "GET", headers: Iterable[tuple[str, str]] = (), body: str = ""
) -> dict[str, Any]:
    """One warm-up request as plain data for a seed payload or a snapshot build:
    ``method``, ``path``, ``url``, ``headers`` (pairs, the warm-up header last), ``body``."""
    pairs = [(k.lower(), v) for k, v in headers if k.lower() != HEADER]
    pairs.append((HEADER, "1"))
    return {"method": method.upper(), "path": path, "url": ORIGIN + path, "headers": pairs, "body": body}


def requests(profile: FunctionProfile) -> list[dict[str, Any]]:
    """``worker.warmup`` as :func:`request` data."""
    return [request(w.path, w.method, w.headers.items(), w.body) for w in profile.worker.warmup]


def failed(entry: dict[str, Any]) -> bool:
    """A report entry of a request that threw, answered 5xx or did not answer in time."""
    return bool(entry.get("error")) or int(entry.get("status") or 0) >= 500


def describe(report: list[dict[str, Any]]) -> str:
    """One line for the function log: ``GET / 200 in 35.2 ms, GET /a failed: ...``."""
    parts = []
    for r in report:
        what = f"{r.get('method', 'GET')} {r.get('path', '/')}"
        if r.get("error"):
            parts.append(f"{what} failed: {r['error']}")
        else:
            parts.append(f"{what} {r.get('status')} in {float(r.get('ms', 0)):.1f} ms")
    return ", ".join(parts)


class ScratchStore:
    """KV and Cache calls of a warm-up: a private in-memory store, so reads see only
    what the warm-up itself wrote and nothing reaches the function's real stores."""

    def __init__(self) -> None:
        self.kv: dict[str, dict[str, Any]] = {}

    def call(self, op: str, args: list[Any]) -> Any:
        """The value a real backend would answer ``op`` with (errors: ValueError)."""
        args = list(args) + [None] * 4
        if op == "kv.open":
            self.kv.setdefault(str(args[0]), {})
            return None
        table = self.kv.setdefault(str(args[0]), {})
        if op == "kv.get":
            return table.get(str(args[1]))
        if op == "kv.set":
            table[str(args[1])] = args[2]
            return None
        if op == "kv.delete":
            return table.pop(str(args[1]), None) is not None
        if op == "kv.list":
            return list(table)
        if op in ("cache.open", "cache.put"):
            return None
        if op in ("cache.has", "cache.drop", "cache.delete"):
            return False
        if op in ("cache.names", "cache.keys"):
            return []
        if op == "cache.match":
            return None
        raise ValueError(f"{op} is not available during warm-up")
