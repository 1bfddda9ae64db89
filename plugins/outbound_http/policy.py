"""Which subrequests are allowed (host names and resolved addresses)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from plugins.outbound_http.config import OutboundConfig

METADATA = ("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
DEFAULT_DENY = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    *METADATA,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(items: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(i, strict=False) for i in items]


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*.") and (host.endswith(pattern[1:]) or host == pattern[2:]):
            return True
        if host == pattern:
            return True
    return False


class Policy:
    """Compiled allow/deny rules."""

    def __init__(self, config: OutboundConfig) -> None:
        self.config = config
        self.allow = _nets(config.allow_cidrs)
        self.deny = _nets(config.deny_cidrs) + (_nets(DEFAULT_DENY) if config.deny_private else [])

    def check_host(self, host: str) -> str | None:
        """A reason to refuse ``host`` by name, or None."""
        if host_matches(host, self.config.deny_hosts):
            return f"host {host} is denied"
        if self.config.allow_hosts and not host_matches(host, self.config.allow_hosts):
            return f"host {host} is not in the allow list"
        return None

    def check_address(self, address: str) -> str | None:
        """A reason to refuse connecting to ``address``, or None."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.allow if net.version == ip.version):
            return None
        if any(ip in net for net in self.deny if net.version == ip.version):
            return f"address {ip} is in a denied network"
        return None

    def check(self, host: str, addresses: Iterable[str]) -> str | None:
        reason = self.check_host(host)
        if reason:
            return reason
        addresses = list(addresses)
        if not addresses:
            return f"host {host} has no address"
        for address in addresses:
            reason = self.check_address(address)
            if reason:
                return reason
        return None
