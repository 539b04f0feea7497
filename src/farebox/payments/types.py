"""The payment backend port: what a backend can do, what it is asked, what it answers.

A backend answers every status question with one of three states (paid, pending, failed) and,
for failed, the reason. The ledger side (crediting once) lives in `invoices.py`, not here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class Method(enum.StrEnum):
    """PPQ's top-up methods (the path segment of POST /topup/create/{method})."""

    LIGHTNING = "btc-lightning"
    BTC = "btc"
    LTC = "ltc"
    LBTC = "lbtc"
    XMR = "xmr"


class Currency(enum.StrEnum):
    """What a customer may state an amount in."""

    SATS = "SATS"
    BTC = "BTC"
    USD = "USD"


class PayState(enum.StrEnum):
    PAID = "paid"
    PENDING = "pending"
    FAILED = "failed"


class FailReason(enum.StrEnum):
    EXPIRED = "expired"  # nothing (or nothing we count) arrived before the invoice expired
    UNDERPAID = "underpaid"  # part of the amount arrived, then the invoice expired
    PAID_LATE = "paid_late"  # the whole amount arrived after expiry
    INVALID = "invalid"  # the backend invalidated the payment (e.g. a double spend)


@dataclass(frozen=True, slots=True)
class Capabilities:
    methods: frozenset[Method]
    webhooks: bool  # the backend pushes status changes to us
    fiat_amounts: bool  # the backend prices invoices in USD itself (else it needs sats)


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    """One invoice to open. `amount`/`currency` are the customer's (SATS restated as BTC);
    `sats` is the same value in satoshis (at our rate when the customer stated USD)."""

    reference: str  # our invoice id
    method: Method
    amount: Decimal
    currency: Currency  # BTC or USD
    sats: int
    expiry_s: int
    memo: str


@dataclass(frozen=True, slots=True)
class CreatedInvoice:
    backend_invoice_id: str
    expires_at: float
    bolt11: str | None = None
    address: str | None = None
    payment_uri: str | None = None  # BIP21 / monero: URI with the amount, when known
    amount_due: str | None = None  # in the payment method's own coin, as the backend states it
    checkout_url: str | None = None


@dataclass(frozen=True, slots=True)
class BackendStatus:
    state: PayState
    reason: FailReason | None = None
    overpaid: bool = False


class PaymentBackend(Protocol):
    name: str
    capabilities: Capabilities

    async def create_invoice(self, request: InvoiceRequest) -> CreatedInvoice: ...

    async def invoice_status(self, backend_invoice_id: str) -> BackendStatus: ...

    def webhook_invoice_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The backend invoice id a webhook delivery is about; raises WebhookRejected when the
        delivery cannot be trusted or read. The delivery only triggers a status check: the
        credit decision always comes from `invoice_status`."""
        ...

    async def close(self) -> None: ...
