"""Function logs (recent lines per function, followable) and the daemon's own log."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import deque
from typing import Any

import trio
from attrs import asdict, frozen

FOLLOW_BUFFER = 256
"""Lines a slow follower may lag behind before it misses lines."""


@frozen
class LogLine:
    """One line of a function's log."""

    time: float
    function: str
    level: str
    message: str
    instance: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.time))
        who = f" {self.instance}" if self.instance else ""
        return f"{stamp}{who} [{self.level}] {self.message}"


class _Bucket:
    """A token bucket of log lines per second for one function."""

    __slots__ = ("dropped", "stamp", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now
        self.dropped = 0


class FunctionLogs:
    """A ring buffer of recent lines per function, plus live followers.

    Each function may add ``rate`` lines per second (bursts of ``2 * rate``); lines
    over that are dropped and counted, and one ``N lines dropped`` line says so once
    the function is under the rate again. 0 disables the limit.
    """

    def __init__(self, lines: int = 1000, rate: int = 0) -> None:
        self.lines = lines
        self.rate = rate
        self.dropped_total = 0
        self._recent: dict[str, deque[LogLine]] = {}
        self._followers: dict[str, set[trio.MemorySendChannel[LogLine]]] = {}
        self._buckets: dict[str, _Bucket] = {}

    def _admit(self, function: str) -> int | None:
        """None when ``function`` is over its rate, else the lines dropped before this one."""
        if self.rate <= 0:
            return 0
        now = time.monotonic()
        bucket = self._buckets.get(function)
        if bucket is None:
            bucket = self._buckets[function] = _Bucket(2.0 * self.rate, now)
        bucket.tokens = min(2.0 * self.rate, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            bucket.dropped += 1
            self.dropped_total += 1
            return None
        bucket.tokens -= 1.0
        dropped, bucket.dropped = bucket.dropped, 0
        return dropped

    def append(
        self, function: str, level: str, message: str, instance: str = "", *, limit: bool = True
    ) -> LogLine | None:
        """Add a line; None when it was dropped by the rate limit (``limit=False``: never)."""
        dropped = self._admit(function) if limit else 0
        if dropped is None:
            return None
        if dropped:
            self._add(
                LogLine(
                    time.time(),
                    function,
                    "warning",
                    f"{dropped} log lines dropped: over {self.rate} lines/s ([logging] function_log_rate)",
                    instance,
                )
            )
        return self._add(LogLine(time.time(), function, level, message[:16384], instance))

    def _add(self, line: LogLine) -> LogLine:
        function = line.function
        self._recent.setdefault(function, deque(maxlen=self.lines)).append(line)
        for send in list(self._followers.get(function, ())):
            try:
                send.send_nowait(line)
            except trio.WouldBlock:
                pass  # a slow follower misses lines rather than stalling workers
            except trio.BrokenResourceError:
                self._followers[function].discard(send)
        return line

    def recent(self, function: str, limit: int | None = None) -> list[LogLine]:
        lines = list(self._recent.get(function, ()))
        return lines[-limit:] if limit else lines

    def follow(self, function: str) -> trio.MemoryReceiveChannel[LogLine]:
        """A channel receiving every new line of ``function``; close it to stop."""
        send, receive = trio.open_memory_channel[LogLine](FOLLOW_BUFFER)
        self._followers.setdefault(function, set()).add(send)
        return receive

    def forget(self, function: str) -> None:
        self._recent.pop(function, None)
        self._buckets.pop(function, None)


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_daemon_logging(level: str = "info", json_lines: bool = False) -> None:
    """Configure the ``noslate`` logger (stderr; text or JSON lines)."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("noslate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for name in ("hypercorn.error", "hypercorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel("WARNING" if name == "hypercorn.error" else "ERROR")
        lg.propagate = False
