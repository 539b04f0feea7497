"""Vetting a wallet's relays before anything is done with them (no invoice for a bad relay)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from farebox.net.ssrf import FetchPolicy, FetchRefused, vet_host

PARAM = "nwc_url"


async def vet_relays(relays: Sequence[str], policy: FetchPolicy) -> None:
    """Raise FetchRefused (400, param nwc_url) unless every relay's host is public, or allowed
    by the operator (FAREBOX_FETCH_ALLOW_HOSTS / _NETWORKS), and resolves now.

    The connection itself is vetted again when it is made (net/socks.py): this check is what
    lets a refused relay be reported at once, before an invoice is opened.
    """
    for relay in relays:
        try:
            parts = urlsplit(relay)
            host = parts.hostname
            port = parts.port or (443 if parts.scheme == "wss" else 80)
        except ValueError:
            raise FetchRefused(
                f"The relay {relay[:200]!r} is not a valid URL.", param=PARAM
            ) from None
        if not host:
            raise FetchRefused(f"The relay {relay[:200]!r} names no host.", param=PARAM)
        try:
            await vet_host(host, port, policy, PARAM)
        except FetchRefused as exc:
            raise FetchRefused(
                f"The relay {relay[:200]!r} cannot be used: {exc.message}", param=PARAM
            ) from exc
