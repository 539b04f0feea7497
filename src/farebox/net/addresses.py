"""Which IP addresses an outbound fetch may reach: only globally routable ones.

An allow rule, not a growing deny list. IPv4 must be `is_global` (and not multicast); IPv6 must
be global unicast (2000::/3) and `is_global`. IPv6 transition ranges are decided by the IPv4
address they carry, or refused outright when they carry none we can check:

| range | what it is | verdict |
|---|---|---|
| ::ffff:0:0/96 | IPv4-mapped (the socket connects to the IPv4) | the embedded IPv4's |
| 64:ff9b::/96 | NAT64 well-known prefix (DNS64 answers on IPv6-only hosts) | the embedded IPv4's |
| 2002::/16 | 6to4 (bits 16-48 are the IPv4 gateway) | the embedded IPv4's |
| ::/96 | IPv4-compatible (deprecated; a `sit` tunnel reaches the IPv4) | refused |
| ::ffff:0:0:0/96 | IPv4-translated (SIIT, RFC 2765) | refused |
| 2001::/32 | Teredo (tunnels to an IPv4 server and client) | refused |
| 64:ff9b:1::/48 | local-use NAT64 (RFC 8215; the operator's own translator) | refused |

Python's `is_global` alone passed `::127.0.0.1`, `2002:7f00:1::` and `::ffff:0:7f00:1`; the
table above closes those. A short IPv4 deny list stays as a floor under `is_global`, whose
tables have changed between Python versions.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_NEVER = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in ("::/96", "::ffff:0:0:0/96", "2001::/32", "64:ff9b:1::/48", "2001:db8::/32")
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a mapped, NAT64 (64:ff9b::/96) or 6to4 address leads to, if any."""
    if address in _MAPPED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFF_FFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True if `address` is globally routable (see the module's table for IPv6)."""
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in net for net in _V4_NEVER):
            return False
        return address.is_global and not address.is_multicast
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    if any(address in net for net in _REFUSED_V6):
        return False
    return address in _GLOBAL_UNICAST and address.is_global and not address.is_multicast
