"""Hypercorn listeners whose connections can never take the daemon down.

Hypercorn runs every connection's handler in one nursery per listener: an exception
escaping a single connection (an h11 state error, a bug in a protocol path, an OS
error hypercorn does not expect) would cancel that nursery and end the listener, and
with it the daemon. :class:`GuardedTCPServer` confines such a failure to its own
connection: it is logged (once per connection) and the connection is closed.
"""

from __future__ import annotations

import contextlib
import logging

import trio
from hypercorn.trio import run as hyper_run
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("noslate.listener")


class GuardedTCPServer(TCPServer):
    """Hypercorn's per-connection server; failures stay inside the connection."""

    async def run(self) -> None:
        try:
            await super().run()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the peer went away: nothing to report
        except* Exception as group:
            log.error(
                "a client connection failed inside the HTTP server and was closed "
                "(other connections are unaffected): %r",
                group.exceptions[0],
                exc_info=group,
            )
            with contextlib.suppress(Exception):
                await self.stream.aclose()


def install() -> None:
    """Make hypercorn's trio worker use :class:`GuardedTCPServer` (idempotent)."""
    hyper_run.TCPServer = GuardedTCPServer  # type: ignore[misc]
