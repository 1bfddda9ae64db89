"""``[plugins.outbound_http]``."""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs
from attrs import field, frozen


def _cidrs(_i: Any, a: attrs.Attribute, value: list[str]) -> None:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{a.name}: {item!r} is not an IP network (e.g. 10.0.0.0/8): {exc}") from None


def _positive(_i: Any, a: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{a.name} must be > 0; got {value}")


@frozen
class OutboundConfig:
    """Outbound policy and limits."""

    allow_hosts: list[str] = field(factory=list)
    """When non-empty, only these host names (``*.example.com`` matches subdomains)."""
    deny_hosts: list[str] = field(factory=list)
    """Host names always refused (same patterns)."""
    allow_cidrs: list[str] = field(factory=list, validator=_cidrs)
    """Networks allowed even if a deny rule covers them (e.g. ``127.0.0.1/32`` in tests)."""
    deny_cidrs: list[str] = field(factory=list, validator=_cidrs)
    """Networks refused in addition to the defaults."""
    deny_private: bool = True
    """Refuse loopback, link-local, private, shared, multicast, reserved and metadata addresses."""
    max_subrequests: int = field(default=50, validator=_positive)
    """Subrequests one inbound request may make."""
    max_concurrent_per_function: int = field(default=32, validator=_positive)
    """Subrequests one function may have in flight at once (its own connection pool
    holds as many connections); more wait their turn, within ``total_timeout``."""
    connect_timeout: float = field(default=5.0, validator=_positive)
    timeout: float = field(default=30.0, validator=_positive)
    """Seconds allowed between bytes (read/write/pool) of a subrequest."""
    total_timeout: float = field(default=60.0, validator=_positive)
    """Seconds from a subrequest's start (waiting for a turn included) to its response
    head; a stalled upstream costs only its own function."""
    max_response_size: int = field(default=32 * 1024 * 1024, validator=_positive)
    """Bytes of subresponse body; beyond, the body stream errors."""
    max_redirects: int = field(default=5, validator=lambda _i, _a, v: _positive(_i, _a, v + 1))
