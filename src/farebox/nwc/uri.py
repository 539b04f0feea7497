"""Reading a `nostr+walletconnect://` connection string (NIP-47), strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, urlsplit

from farebox import optional
from farebox.errors import InvalidRequest

SCHEMES = ("nostr+walletconnect", "nostrwalletconnect")
MAX_LENGTH = 2048
MAX_RELAYS = 8
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class NwcUri:
    raw: str
    wallet_pubkey: str
    relays: tuple[str, ...]
    secret: str


def _bad(why: str) -> InvalidRequest:
    return InvalidRequest(
        f"nwc_url is not a valid Nostr Wallet Connect string: {why}. Expected "
        "nostr+walletconnect://<wallet pubkey>?relay=wss://...&secret=<hex>.",
        param="nwc_url",
    )


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # an unclosed "[" of an IPv6 host
        raise _bad("it or one of its relays is not a URL") from None


def parse_nwc_url(value: object) -> NwcUri:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(
            "nwc_url is required (a nostr+walletconnect:// string).", param="nwc_url"
        )
    raw = value.strip()
    if len(raw) > MAX_LENGTH:
        raise _bad("it is too long")
    parts = _split(raw)
    if parts.scheme.lower() not in SCHEMES:
        raise _bad("it must start with nostr+walletconnect://")
    pubkey = (parts.netloc or parts.path.lstrip("/")).lower()
    if not _HEX64.match(pubkey):
        raise _bad("the wallet public key must be 64 hex characters")
    query = parse_qs(parts.query)
    relays = tuple(query.get("relay", []))
    if not relays:
        raise _bad("it names no relay")
    if len(relays) > MAX_RELAYS:
        raise _bad(f"it names more than {MAX_RELAYS} relays")
    for relay in relays:
        relay_parts = _split(relay)
        if relay_parts.scheme not in ("ws", "wss") or not relay_parts.netloc:
            raise _bad("each relay must be a ws:// or wss:// URL")
    secrets = query.get("secret", [])
    if len(secrets) != 1 or not _HEX64.match(secrets[0].lower()):
        raise _bad("the secret must be 64 hex characters")
    try:
        optional.nostr_sdk().NostrWalletConnectUri.parse(raw)
    except Exception:
        raise _bad("the Nostr library cannot read it") from None
    return NwcUri(raw, pubkey, relays, secrets[0].lower())
