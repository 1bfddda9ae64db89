"""Frames between the daemon, the launcher and its seeds (blocking side).

A frame is a 4-byte big-endian length and a msgpack map (msgspec). A frame that
carries file descriptors says how many in its ``nfds`` key; the descriptors ride as
SCM_RIGHTS on the first ``sendmsg`` of that frame, so by the time a frame is complete
its descriptors are already in the receiver's queue, in order. Received descriptors
are close-on-exec (``MSG_CMSG_CLOEXEC``).

Stream sockets (not SEQPACKET) because seed payloads carry the function's code, which
can exceed a socket buffer.
"""

from __future__ import annotations

import array
import socket
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
MAX_FDS = 16
RECV_SIZE = 256 * 1024
ANC_SIZE = socket.CMSG_SPACE(MAX_FDS * 4)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(dict)


def encode(msg: dict[str, Any], nfds: int = 0) -> bytes:
    """One frame: header plus body, with ``nfds`` recorded in the body."""
    body = _encoder.encode({**msg, "nfds": nfds})
    return HEADER.pack(len(body)) + body


def fds_from_ancillary(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors of SCM_RIGHTS control messages."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds.extend(arr)
    return fds


class FrameBuffer:
    """Reassembles frames from received bytes and descriptors (used by both sides)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.fds: deque[int] = deque()

    def add(self, data: bytes, fds: Sequence[int] = ()) -> None:
        self.buf += data
        self.fds.extend(fds)

    def frames(self) -> Iterator[dict[str, Any]]:
        """Complete frames, each with its descriptors in ``msg["fds"]``."""
        while len(self.buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buf)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            end = HEADER.size + size
            if len(self.buf) < end:
                return
            msg = _decoder.decode(bytes(self.buf[HEADER.size : end]))
            del self.buf[:end]
            n = msg.pop("nfds", 0)
            if len(self.fds) < n:
                raise ValueError(f"frame announced {n} descriptors, {len(self.fds)} arrived")
            msg["fds"] = [self.fds.popleft() for _ in range(n)]
            yield msg

    def close_fds(self) -> None:
        """Close descriptors that arrived without a frame to claim them."""
        import os

        while self.fds:
            os.close(self.fds.popleft())


class Conn:
    """A blocking framed connection (launcher <-> daemon, launcher <-> seed)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = FrameBuffer()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, msg: dict[str, Any], fds: Sequence[int] = ()) -> None:
        data = encode(msg, len(fds))
        if fds:
            sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            data = data[sent:]
        if data:
            self.sock.sendall(data)

    def receive(self) -> list[dict[str, Any]] | None:
        """Read once (the socket is readable); return complete frames, None at EOF."""
        data, anc, _flags, _addr = self.sock.recvmsg(RECV_SIZE, ANC_SIZE, socket.MSG_CMSG_CLOEXEC)
        self.buffer.add(data, fds_from_ancillary(anc))
        if not data:
            return None
        return list(self.buffer.frames())

    def receive_one(self) -> dict[str, Any] | None:
        """Block until one whole frame arrives (start-up handshakes); None at EOF."""
        while True:
            for msg in self.buffer.frames():
                return msg
            if self.receive_more() is None:
                return None

    def receive_more(self) -> bool | None:
        data, anc, _flags, _addr = self.sock.recvmsg(RECV_SIZE, ANC_SIZE, socket.MSG_CMSG_CLOEXEC)
        self.buffer.add(data, fds_from_ancillary(anc))
        return True if data else None

    def close(self) -> None:
        self.buffer.close_fds()
        self.sock.close()
