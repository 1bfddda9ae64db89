"""The kernel <-> worker wire protocol (shared by every runtime).

One Unix stream socket per worker instance (a socketpair end the kernel created).
Every frame is a 4-byte big-endian length followed by one msgpack-encoded
:data:`Frame` (msgspec tagged structs, array-like). ``docs/protocol.md`` is the
normative description; this module is the code both ends import.

Ids
    ``rid`` (an inbound request) is allocated by the kernel: positive integers.
    ``fid`` (a worker's outbound ``fetch()``) and ``cid`` (a worker's host call) are
    allocated by the worker: positive integers in their own spaces.
    Stream frames (:class:`Chunk`, :class:`End`, :class:`Ack`, :class:`Abort`) carry
    ``sid``: ``+rid`` for an inbound request, ``-fid`` for a subrequest. Direction
    tells which body is meant: kernel->worker ``Chunk(+rid)`` is request body,
    worker->kernel ``Chunk(+rid)`` is response body; worker->kernel ``Chunk(-fid)``
    is subrequest body, kernel->worker ``Chunk(-fid)`` is subresponse body.

Flow control
    Body chunks are at most :data:`MAX_CHUNK` bytes. A sender keeps at most
    :data:`WINDOW` chunks of one stream unacknowledged; the receiver sends
    ``Ack(sid, n)`` once it has consumed (delivered to JS / written to the client)
    ``n`` more chunks. Nothing buffers whole bodies.

Host calls
    ``Call(cid, op, args)`` -> ``Result(cid, ok, value, error_name, error_message)``.
    Ops (args are a list; bytes are msgpack bin):

    ========================  =========================================  ===============
    op                        args                                       value
    ========================  =========================================  ===============
    ``kv.open``               [store, options dict]                      None
    ``kv.get``                [store, key]                               bytes | None
    ``kv.set``                [store, key, value bytes, ttl_ms | None]   None
    ``kv.delete``             [store, key]                               bool
    ``kv.list``               [store]                                    list[str]
    ``cache.open``            [cache]                                    None
    ``cache.has``             [cache]                                    bool
    ``cache.drop``            [cache]                                    bool
    ``cache.names``           []                                         list[str]
    ``cache.match``           [cache, url, method, req headers, opts]    CachedResponse
                                                                         list | None
    ``cache.put``             [cache, url, req headers, status,          None
                               resp headers, body bytes]
    ``cache.delete``          [cache, url, method, opts]                 bool
    ``cache.keys``            [cache, url | None, opts]                  list[str]
    ========================  =========================================  ===============

    ``CachedResponse`` is ``[status, headers, body]``. ``error_name`` is a JS error
    name the worker throws: ``TypeError``, ``RangeError``, or a DOMException name
    (``QuotaExceededError``, ``InvalidStateError``, ``NotFoundError``...).
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

MAX_CHUNK = 64 * 1024
"""Largest body chunk in one frame."""
WINDOW = 8
"""Unacknowledged chunks one stream direction may have in flight."""
MAX_FRAME = 1024 * 1024
"""Largest encoded frame a receiver accepts (a chunk plus its envelope, or a host call)."""

Headers = list[tuple[str, str]]


class _F(msgspec.Struct, tag=True, array_like=True, frozen=True):
    pass


# ---- worker -> kernel ---------------------------------------------------------------


class Hello(_F, tag="hello"):
    """First frame of a worker: it is ready to take requests."""

    pid: int
    runtime: str
    info: dict[str, Any] = {}


class Response(_F, tag="resp"):
    """Response head for request ``rid``; body frames follow when ``has_body``."""

    rid: int
    status: int
    headers: Headers
    has_body: bool


class Failure(_F, tag="fail"):
    """Request ``rid`` failed before or while responding.

    ``status`` is what the client gets if no head was sent yet (500 for an uncaught
    exception, 502 when no response was produced). ``message`` is safe to show the
    client; ``detail`` (with the JS stack) goes only to the function's log.
    """

    rid: int
    status: int
    message: str
    detail: str = ""


class Settled(_F, tag="settled"):
    """All ``waitUntil`` work of request ``rid`` has settled."""

    rid: int


class Log(_F, tag="log"):
    """A console line or a runtime diagnostic for the function's log."""

    level: str
    message: str
    rid: int = 0


class Call(_F, tag="call"):
    """A host call (KV, cache); answered by :class:`Result`."""

    cid: int
    op: str
    args: list[Any]


class Fetch(_F, tag="fetch"):
    """A subrequest (``fetch()`` in user code); answered by FetchResponse or FetchError."""

    fid: int
    method: str
    url: str
    headers: Headers
    has_body: bool
    redirect: str = "follow"
    rid: int = 0
    """(added) The inbound request this subrequest belongs to, 0 if unknown; the
    kernel counts subrequests per inbound request with it."""


# ---- kernel -> worker ---------------------------------------------------------------


class Request(_F, tag="req"):
    """An inbound request; body frames follow when ``has_body``.

    ``url`` is absolute (``http://hello.localhost:8080/a?b=1``) with the path and
    query exactly as the client sent them.
    """

    rid: int
    method: str
    url: str
    headers: Headers
    has_body: bool


class Result(_F, tag="result"):
    """Answer to a :class:`Call`."""

    cid: int
    ok: bool
    value: Any = None
    error_name: str = ""
    error_message: str = ""


class FetchResponse(_F, tag="fresp"):
    """Response head of subrequest ``fid``; body frames ``Chunk(-fid)`` follow."""

    fid: int
    status: int
    status_text: str
    headers: Headers
    url: str
    has_body: bool


class FetchError(_F, tag="ferr"):
    """Subrequest ``fid`` was refused or failed; ``fetch()`` rejects with it."""

    fid: int
    error_name: str
    message: str


class Shutdown(_F, tag="shutdown"):
    """Finish in-flight requests, then exit (graceful stop)."""

    grace_ms: int = 0


# ---- both directions ----------------------------------------------------------------


class Chunk(_F, tag="chunk"):
    """A piece of a body (see the module docs for ``sid``)."""

    sid: int
    data: bytes


class End(_F, tag="end"):
    """The body of stream ``sid`` is complete."""

    sid: int


class Ack(_F, tag="ack"):
    """The receiver consumed ``n`` more chunks of stream ``sid``."""

    sid: int
    n: int = 1


class Abort(_F, tag="abort"):
    """Stream ``sid`` ends abnormally (client gone, stream error, deadline)."""

    sid: int
    reason: str = ""


Frame = (
    Hello
    | Response
    | Failure
    | Settled
    | Log
    | Call
    | Fetch
    | Request
    | Result
    | FetchResponse
    | FetchError
    | Shutdown
    | Chunk
    | End
    | Ack
    | Abort
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frame)
_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


def encode(frame: Frame) -> bytes:
    """Return ``frame`` with its length prefix, ready to write."""
    body = _encoder.encode(frame)
    return _LEN.pack(len(body)) + body


def decode(payload: bytes | memoryview) -> Frame:
    """Decode one frame payload (without its length prefix)."""
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid frame: {exc}") from exc


class FrameBuffer:
    """Incremental decoder: feed bytes, take whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame now complete."""
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
            self._buf.clear()
        frames: list[Frame] = []
        view = memoryview(data)
        total, off = len(data), 0
        while total - off >= 4:
            (size,) = _LEN.unpack_from(data, off)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame of {size} bytes exceeds {MAX_FRAME}")
            end = off + 4 + size
            if end > total:
                break
            frames.append(decode(view[off + 4 : end]))
            off = end
        if off < total:
            self._buf += view[off:]
        return frames
