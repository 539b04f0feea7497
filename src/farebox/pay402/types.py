"""Plain values of the 402 flow: what a request costs, the invoice minted for it, what a verified
credential proves, and the scheme port each wire format (L402, Payment, later Cashu) fills in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Offer:
    """One validated request's price: what a keyless caller must pay before it is served.

    `endpoint` is the canonical path (`/v1/images/generations`, never an alias), which a paid
    credential is bound to together with `price_nanos`."""

    endpoint: str
    price_nanos: int
    description: str


@dataclass(frozen=True, slots=True)
class Invoice:
    """A Lightning invoice minted for one offer (one per challenge; never reused)."""

    bolt11: str
    payment_hash: str  # lowercase hex, decoded from the BOLT11 itself
    sats: int
    expires_at: float  # the earlier of the invoice's and the challenge's expiry
    network: str | None  # mainnet | regtest | signet, from the invoice prefix


@dataclass(frozen=True, slots=True)
class Claims:
    """What a credential proves once its signature (or HMAC) and preimage check out.

    `payment_id` is the unique key of the payment (the Lightning payment hash): the credential's
    ledger account and its redemption row are keyed by it, so one payment is credited once
    whichever scheme presents it."""

    scheme: str  # the history row's query_source: "l402" | "payment"
    payment_id: str
    endpoint: str
    price_nanos: int
    sats: int
    expires_at: float  # the deadline for the first presentation (the payment window)
    challenge_id: str | None = None  # Payment scheme: for the receipt


@dataclass(frozen=True, slots=True)
class Issued:
    """One scheme's part of a 402: its `WWW-Authenticate` value, and what the JSON body repeats
    of it (so `curl | jq` can read the macaroon without parsing headers)."""

    header: str
    body: dict[str, str]


@dataclass(frozen=True, slots=True)
class Presented:
    """A credential read from a request, not yet verified."""

    scheme: str
    raw: str  # the header's credential part (a bearer secret: never logged)


class Scheme(Protocol):
    """One 402 wire format. The service asks each registered scheme for its challenge header
    and gives a presented credential to the scheme that read it."""

    name: str

    def challenge(self, offer: Offer, invoice: Invoice) -> Issued:
        """The challenge that offers this invoice in this scheme."""
        ...

    def read(self, authorization: str) -> Presented | None:
        """The credential if `authorization` is in this scheme, else None (never raises)."""
        ...

    def verify(self, presented: Presented) -> Claims:
        """Check signature and proof of payment; raises CredentialRejected. Expiry and
        redemption are the service's business (a paid credential outlives its challenge)."""
        ...
