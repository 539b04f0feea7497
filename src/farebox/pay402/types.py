"""Plain values of the 402 flow: what a request costs, the invoice minted for it, what a verified
credential proves, and the scheme port each Lightning wire format (L402, Payment) fills in.
Cashu (X-Cashu, cashu/) needs no invoice and is offered beside them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Offer:
    """One validated request's price: what a keyless caller must pay before it is served.

    `endpoint` is the canonical path (`/v1/images/generations`, never an alias), which a paid
    credential is bound to together with `price_nanos`.

    `worst_case` offers (chat) are priced at the most the request may cost; what it does not
    use stays on the paid credential for later requests (or comes back as Cashu change)."""

    endpoint: str
    price_nanos: int
    description: str
    worst_case: bool = False


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
    fixed_price_only: bool  # a charge for exactly the price: not offered for worst_case offers

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


class EcashOffer(Protocol):
    """Cashu beside the Lightning schemes (cashu/service.py): its X-Cashu payment request."""

    @property
    def enabled(self) -> bool: ...

    async def payment_request(self, offer: Offer) -> tuple[str, dict[str, object]]:
        """The X-Cashu header value (creqA) and what the 402's body repeats of it."""
        ...
