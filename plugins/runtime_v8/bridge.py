"""The host side of the JS bridge: the only Python object the runtime JS can call.

JS holds it in a module closure (never on ``globalThis``). Every method takes and
returns primitives only, and none lets a Python exception, path or object reach JS:
failures are written to stderr (the daemon's log) and answered with a safe value.
Bytes travel as latin-1 strings (one char per byte), which STPyV8 converts without
per-element work.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import hmac
import itertools
import json
import os
import re
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from kernel import protocol as p

F = TypeVar("F", bound=Callable[..., Any])
MAX_EARLY_FRAMES = 1000
"""Frames (console lines) kept while no channel is attached (seed init)."""
DIGESTS = {"sha1", "sha256", "sha384", "sha512"}
LOG_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}
ZLIB_WBITS = {"gzip": 31, "deflate": 15, "deflate-raw": -15}
ZMAX_OUT = 64 * 1024 * 1024
"""The most one chunk written to a DecompressionStream may inflate to (the instance
gets a TypeError beyond, instead of being killed for memory by a decompression bomb)."""
ZTOO_LARGE = 1
CALL_TOO_LARGE = 2
"""``call``'s answer when the arguments do not fit in one frame (``MAX_FRAME``)."""


def safe(default: Any = None) -> Callable[[F], F]:
    """Catch every exception of a bridge method; report it to stderr only."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any) -> Any:
            try:
                return fn(*args)
            except BaseException:
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"runtime_v8: bridge {fn.__name__} failed:\n{traceback.format_exc()}")
                return default

        return inner  # type: ignore[return-value]

    return wrap


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _pair(m: re.Match[str]) -> str:
    cp = ord(m.group()) - 0x10000
    return chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF))


def js_str(s: str) -> str:
    """``s`` with characters beyond U+FFFF as UTF-16 surrogate pairs.

    STPyV8 maps each Python code point to one UTF-16 unit, truncating astral ones
    (an emoji in user code or in a header would be corrupted): pass every string
    that may hold them through here.
    """
    if s.isascii():
        return s
    return _ASTRAL.sub(_pair, s)


_json_encode = msgspec.json.Encoder().encode
_json_headers = msgspec.json.Decoder(list[tuple[str, str]]).decode


def headers_json(headers: p.Headers) -> str:
    """Header pairs as JSON text for JS (msgspec: ~7x faster than ``json.dumps``)."""
    return js_str(_json_encode(headers).decode())


def parse_headers(text: str) -> list[tuple[str, str]]:
    """Header pairs from JS's ``JSON.stringify``."""
    try:
        return _json_headers(text)
    except msgspec.MsgspecError:  # e.g. a lone surrogate escape: let json decide
        return [tuple(h) for h in json.loads(text)]


def from_json_args(text: str) -> Any:
    """Decode host-call args: ``{"$b": latin1}`` objects become bytes."""

    def hook(obj: dict[str, Any]) -> Any:
        if len(obj) == 1 and isinstance(obj.get("$b"), str):
            return obj["$b"].encode("latin-1")
        return obj

    return json.loads(text, object_hook=hook)


def to_json_value(value: Any) -> str:
    """Encode a host-call result for JS (bytes become ``{"$b": latin1}``)."""

    def conv(v: Any) -> Any:
        if isinstance(v, bytes | bytearray | memoryview):
            return {"$b": bytes(v).decode("latin-1")}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    return json.dumps(conv(value))  # ASCII: astral characters as \\u escapes


class OutStream:
    """A body the host sends itself (known bytes), WINDOW chunks at a time."""

    __slots__ = ("data", "inflight", "offset", "sid")

    def __init__(self, sid: int, data: bytes) -> None:
        self.sid = sid
        self.data = data
        self.offset = 0
        self.inflight = 0


class Host:
    """Bridge methods called from JS, plus the state they touch (timers, streams)."""

    def __init__(self) -> None:
        self.write: Callable[[bytes], None] | None = None
        self.early: list[bytes] = []
        self.timers: list[tuple[float, int, int]] = []
        self._seq = itertools.count()
        self.origin = self.origin_ms = 0.0
        """``performance.now()`` counts from ``origin`` (monotonic); ``origin_ms`` is its
        wall-clock time (``performance.timeOrigin``); see :meth:`reset_origin`."""
        self.reset_origin()
        self.streams: dict[int, OutStream] = {}
        self.settle_later: set[int] = set()
        self.active: set[int] = set()
        self.current_rid = 0
        self.min_log_level = 0
        self.zstreams: dict[int, Any] = {}

    # ---- plumbing (Python side) -------------------------------------------------

    def emit(self, *frames: p.Frame) -> None:
        data = b"".join(p.encode(f) for f in frames)
        if self.write is not None:
            self.write(data)
        elif len(self.early) < MAX_EARLY_FRAMES:
            self.early.append(data)

    def attach(self, write: Callable[[bytes], None]) -> None:
        """Start writing frames to the channel (after Hello); flush early ones."""
        self.write = write
        early, self.early = self.early, []
        for data in early:
            write(data)

    def _start_stream(self, sid: int, data: bytes) -> None:
        st = OutStream(sid, data)
        self.streams[sid] = st
        self._pump(st)

    def _pump(self, st: OutStream) -> None:
        frames: list[p.Frame] = []
        n = len(st.data)
        while st.offset < n and st.inflight < p.WINDOW:
            frames.append(p.Chunk(st.sid, st.data[st.offset : st.offset + p.MAX_CHUNK]))
            st.offset += p.MAX_CHUNK
            st.inflight += 1
        if st.offset >= n:
            frames.append(p.End(st.sid))
            del self.streams[st.sid]
            if st.sid in self.settle_later:
                self.settle_later.discard(st.sid)
                self.active.discard(st.sid)
                frames.append(p.Settled(st.sid))
        if frames:
            self.emit(*frames)

    def on_ack(self, sid: int, n: int) -> bool:
        """An Ack for a host-managed stream: send more. False if JS owns ``sid``."""
        st = self.streams.get(sid)
        if st is None:
            return False
        st.inflight -= n
        self._pump(st)
        return True

    def drop_stream(self, sid: int) -> bool:
        """The kernel aborted ``sid``: forget a host-managed body."""
        st = self.streams.pop(sid, None)
        if st is not None and sid in self.settle_later:
            self.settle_later.discard(sid)
            self.active.discard(sid)
            self.emit(p.Settled(sid))
        return st is not None

    @staticmethod
    def _payload(kind: int, payload: str) -> bytes | None:
        if kind == 1:
            return payload.encode("utf-8", "surrogatepass")
        if kind == 2:
            return payload.encode("latin-1")
        return None

    def _guess_rid(self) -> int:
        """The request asynchronous JS work belongs to, when only one is in flight."""
        if len(self.active) == 1:
            return next(iter(self.active))
        return 0

    # ---- called from JS ---------------------------------------------------------

    @safe()
    def respond(self, rid: int, status: int, headers: str, kind: int, payload: str, settled: bool) -> None:
        rid = int(rid)
        body = self._payload(int(kind), payload)
        head = p.Response(rid, int(status), parse_headers(headers), body is not None)
        if body is None:
            if settled:
                self.active.discard(rid)
                self.emit(head, p.Settled(rid))
            else:
                self.emit(head)
            return
        if len(body) <= p.MAX_CHUNK:
            frames: list[p.Frame] = [head]
            if body:
                frames.append(p.Chunk(rid, body))
            frames.append(p.End(rid))
            if settled:
                self.active.discard(rid)
                frames.append(p.Settled(rid))
            self.emit(*frames)
            return
        self.emit(head)
        if settled:
            self.settle_later.add(rid)
        self._start_stream(rid, body)

    @safe()
    def head(self, rid: int, status: int, headers: str) -> None:
        self.emit(p.Response(int(rid), int(status), parse_headers(headers), True))

    @safe()
    def body(self, sid: int, kind: int, payload: str) -> None:
        data = self._payload(int(kind), payload) or b""
        self._start_stream(int(sid), data)

    @safe()
    def chunk(self, sid: int, data: str) -> None:
        self.emit(p.Chunk(int(sid), data.encode("latin-1")))

    @safe()
    def end(self, sid: int) -> None:
        self.emit(p.End(int(sid)))

    @safe()
    def abort(self, sid: int, reason: str) -> None:
        self.emit(p.Abort(int(sid), str(reason)[:500]))

    @safe()
    def ack(self, sid: int, n: int) -> None:
        self.emit(p.Ack(int(sid), int(n)))

    @safe()
    def fail(self, rid: int, status: int, message: str, detail: str) -> None:
        self.emit(p.Failure(int(rid), int(status), str(message), str(detail)))

    @safe()
    def settled(self, rid: int) -> None:
        rid = int(rid)
        if rid in self.streams:
            self.settle_later.add(rid)
            return
        self.active.discard(rid)
        self.emit(p.Settled(rid))

    @safe()
    def log(self, level: str, message: str, rid: int) -> None:
        if LOG_LEVELS.get(level, 1) < self.min_log_level:
            return
        self.emit(p.Log(str(level), str(message), int(rid or 0) or self._guess_rid()))

    @safe(False)
    def call(self, cid: int, op: str, args: str) -> bool | int:
        if self.write is None:
            return False
        data = p.encode(p.Call(int(cid), str(op), from_json_args(args)))
        if len(data) - 4 > p.MAX_FRAME:
            return CALL_TOO_LARGE  # a TypeError in JS; a frame this size would end the channel
        self.write(data)
        return True

    @safe(False)
    def fetch(self, fid: int, method: str, url: str, headers: str, has_body: bool, redirect: str) -> bool:
        if self.write is None:
            return False
        rid = self.current_rid or self._guess_rid()
        hdrs = parse_headers(headers)
        self.emit(p.Fetch(int(fid), str(method), str(url), hdrs, bool(has_body), str(redirect), rid))
        return True

    @safe()
    def timer(self, tid: int, delay: float) -> None:
        when = time.monotonic() + max(0.0, float(delay)) / 1000.0
        heapq.heappush(self.timers, (when, next(self._seq), int(tid)))

    @safe(0.0)
    def now(self) -> float:
        return (time.monotonic() - self.origin) * 1000.0

    @safe(0.0)
    def time_origin(self) -> float:
        return self.origin_ms

    def reset_origin(self) -> None:
        """A new time origin (this instance's start): ``performance.now()`` and
        ``performance.timeOrigin`` count from here."""
        self.origin = time.monotonic()
        self.origin_ms = time.time() * 1000.0

    @safe("")
    def random(self, n: int) -> str:
        return os.urandom(max(0, min(int(n), 65536))).decode("latin-1")

    @safe(0)
    def zmax(self) -> int:
        """Bytes one chunk written to a DecompressionStream may inflate to."""
        return ZMAX_OUT

    @safe(0)
    def zopen(self, fmt: str, mode: str) -> int:
        wbits = ZLIB_WBITS[fmt]
        compress = mode == "c"
        obj = zlib.compressobj(wbits=wbits) if compress else zlib.decompressobj(wbits=wbits)
        zid = next(self._seq) + 1
        self.zstreams[zid] = (compress, obj)
        return zid

    @safe(None)
    def zpush(self, zid: int, data: str) -> str | None:
        compress, obj = self.zstreams[int(zid)]
        raw = data.encode("latin-1")
        try:
            if compress:
                return obj.compress(raw).decode("latin-1")
            if obj.eof and raw:
                raise zlib.error("data after the end of the compressed stream")
            out = obj.decompress(raw, ZMAX_OUT + 1)
            if len(out) > ZMAX_OUT or obj.unconsumed_tail:
                self.zstreams.pop(int(zid), None)
                return ZTOO_LARGE  # a decompression bomb: a clear TypeError in JS
            return out.decode("latin-1")
        except zlib.error:
            self.zstreams.pop(int(zid), None)
            return None

    @safe(None)
    def zclose(self, zid: int) -> str | None:
        compress, obj = self.zstreams.pop(int(zid))
        try:
            tail = obj.flush()
        except zlib.error:
            return None
        if not compress and not obj.eof:
            return None  # truncated input
        return tail.decode("latin-1")

    @safe(None)
    def digest(self, alg: str, data: str) -> str | None:
        if alg not in DIGESTS:
            return None
        return hashlib.new(alg, data.encode("latin-1")).digest().decode("latin-1")

    @safe(None)
    def hmac(self, alg: str, key: str, data: str) -> str | None:
        if alg not in DIGESTS:
            return None
        return hmac.new(key.encode("latin-1"), data.encode("latin-1"), alg).digest().decode("latin-1")

    @safe(None)
    def pbkdf2(self, alg: str, key: str, salt: str, iterations: int, n: int) -> str | None:
        if alg not in DIGESTS:
            return None
        raw = hashlib.pbkdf2_hmac(alg, key.encode("latin-1"), salt.encode("latin-1"), int(iterations), int(n))
        return raw.decode("latin-1")

    @safe(None)
    def hkdf(self, alg: str, key: str, salt: str, info: str, n: int) -> str | None:
        """RFC 5869 extract-and-expand; None when ``n`` exceeds 255 hash lengths."""
        if alg not in DIGESTS:
            return None
        n, size = int(n), hashlib.new(alg).digest_size
        if not 0 < n <= 255 * size:
            return None
        prk = hmac.new(salt.encode("latin-1") or bytes(size), key.encode("latin-1"), alg).digest()
        out, block, i = b"", b"", 1
        while len(out) < n:
            block = hmac.new(prk, block + info.encode("latin-1") + bytes([i]), alg).digest()
            out += block
            i += 1
        return out[:n].decode("latin-1")
