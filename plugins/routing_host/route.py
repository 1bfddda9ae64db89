"""Host header -> function name."""

from __future__ import annotations

import ipaddress


def function_for_host(host: str) -> str | None:
    """The first DNS label of ``host`` (already without port), or None for IPs and empty hosts."""
    host = host.strip().lower().rstrip(".")
    if not host or host.startswith("["):
        return None
    if ":" not in host and not host.replace(".", "").isdigit():
        return host.split(".", 1)[0] or None  # not an IP literal: skip the costly parse
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    label = host.split(".", 1)[0]
    return label or None
