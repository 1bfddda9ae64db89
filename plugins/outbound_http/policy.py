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
    # IPv4-mapped, -compatible, NAT64, 6to4 and Teredo addresses are judged by the
    # IPv4 address they carry (embedded_ipv4), so they need no entry of their own
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


NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (none for an IPv4 address)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip in COMPATIBLE and int(ip) > 1:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if any(ip in net for net in NAT64):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    return out


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
        """A reason to refuse connecting to ``address``, or None.

        An IPv6 address that embeds an IPv4 one (mapped ``::ffff:a.b.c.d``, compatible
        ``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4
        ``2002::/16``, Teredo ``2001::/32``) is judged by the IPv4 address too, so a
        denied IPv4 network cannot be reached through another spelling."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        candidates = (ip, *embedded_ipv4(ip))
        if any(c in net for c in candidates for net in self.allow if net.version == c.version):
            return None
        for candidate in candidates:
            if any(candidate in net for net in self.deny if net.version == candidate.version):
                shown = ip if candidate == ip else f"{ip} ({candidate})"
                return f"address {shown} is in a denied network"
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
