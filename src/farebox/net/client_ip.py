"""Who the client is: the socket's peer, or, behind proxies the operator trusts, the address
they forwarded.

`X-Forwarded-For` is believed only when the peer is a trusted proxy (FAREBOX_TRUSTED_PROXIES);
then its hops are read from the right, skipping trusted ones, and the first untrusted hop is
the client (what a client writes itself sits further left and is never reached). Without the
setting, the header is ignored: anyone can send it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from farebox.net.addresses import IPAddress, IPNetwork


class ClientAddress:
    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in trusted
        )

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in net for net in self.trusted)

    def of(self, scope: Scope) -> str:
        """The client's IP address as text ("unknown" when the server does not know it)."""
        client = scope.get("client")
        peer = _parse(client[0]) if client else None
        if peer is None:
            return "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return str(peer)
        hops = [
            hop.strip()
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        nearest = peer
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                break  # a trusted proxy wrote something unreadable: trust it no further
            if not self._is_trusted(address):
                return str(address)
            nearest = address
        return str(nearest)


def _parse(text: str) -> IPAddress | None:
    """An address from `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`; None otherwise."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def rate_key(client: str) -> str:
    """What a per-client limit counts by: the IPv4 address, or the IPv6 /64 (one subscriber
    usually holds a whole /64, so counting single IPv6 addresses would not limit anyone)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if address.version == 6:
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)
