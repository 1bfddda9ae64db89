"""What the data plane accepts from a worker's response head (never trusted as sent).

A worker's runtime validates its Response before it crosses to the host; this is the
kernel's own check, so that a broken or subverted runtime cannot send the client a
status outside 200-599 (101 needs an upgrade, which the data plane does not offer),
a header that is not a token, a value with CR, LF or NUL, or a hop-by-hop header.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BAD_VALUE = re.compile(r"[\0\r\n]|[^\x00-\xff]")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}
)


def head_problem(status: object, headers: object) -> str | None:
    """Why ``status`` and ``headers`` cannot go to a client, or None."""
    if type(status) is not int or not 200 <= status <= 599:
        return f"status {status!r} is not an integer from 200 to 599"
    if not isinstance(headers, list):
        return "headers are not a list"
    for pair in headers:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            return "a header is not a (name, value) pair"
        name, value = pair
        if not isinstance(name, str) or not TOKEN.fullmatch(name):
            return f"header name {name!r} is not a token"
        if not isinstance(value, str) or BAD_VALUE.search(value):
            return f"the value of header {name!r} has CR, LF, NUL or a character above U+00FF"
    return None


def end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop ones (the same list when there are none)."""
    if not any(name.lower() in HOP_BY_HOP for name, _ in headers):
        return headers
    return [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP]
