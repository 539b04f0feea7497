"""The dev wallet: a Lightning backend for demos and tests, off unless enabled.

It issues real BOLT11 invoices (regtest, `lnbcrt...`) signed with a key derived from the instance
secret, keeps them in the database, and settles one when `farebox dev pay <bolt11>` (through the
running gateway's `POST /admin/dev/pay`) or a test pays it by revealing the preimage. No money
moves anywhere.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping

from bolt11 import Bolt11, MilliSatoshi, TagChar, Tags, decode, encode
from bolt11.exceptions import Bolt11Exception
from coincurve import PrivateKey
from sqlalchemy import Connection, insert, select, update

from farebox.db.database import Database
from farebox.db.schema import devwallet_invoices
from farebox.errors import InvalidRequest, NotFound
from farebox.payments import invoices
from farebox.payments.errors import WebhookRejected
from farebox.payments.invoices import TopupInvoice
from farebox.payments.types import (
    BackendStatus,
    Capabilities,
    CreatedInvoice,
    FailReason,
    InvoiceRequest,
    Method,
    PayState,
)

NAME = "devwallet"


def dev_wallet_key(secret: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(b"farebox dev wallet\x00" + secret.encode()).digest())


def _insert(conn: Connection, values: dict[str, object]) -> None:
    conn.execute(insert(devwallet_invoices).values(**values))


def _status(conn: Connection, payment_hash: str) -> tuple[float, float | None] | None:
    row = conn.execute(
        select(devwallet_invoices.c.expires_at, devwallet_invoices.c.paid_at).where(
            devwallet_invoices.c.payment_hash == payment_hash
        )
    ).first()
    return None if row is None else (float(row[0]), row[1])


def pay_invoice(conn: Connection, pubkey_hex: str, bolt11: str, now: float) -> str:
    """Settle one of our invoices; returns its preimage. Paying twice returns the same preimage."""
    try:
        decoded = decode(bolt11.strip())
    except (Bolt11Exception, ValueError, TypeError) as exc:
        raise InvalidRequest(f"Not a valid BOLT11 invoice: {exc}") from exc
    if decoded.payee != pubkey_hex:
        raise InvalidRequest("This invoice was not issued by this farebox's dev wallet.")
    row = conn.execute(
        select(devwallet_invoices.c.preimage, devwallet_invoices.c.expires_at).where(
            devwallet_invoices.c.payment_hash == decoded.payment_hash
        )
    ).first()
    if row is None:
        raise NotFound("The dev wallet has no such invoice.")
    if float(row[1]) < now:
        raise InvalidRequest("This invoice has expired.")
    conn.execute(
        update(devwallet_invoices)
        .where(devwallet_invoices.c.payment_hash == decoded.payment_hash)
        .where(devwallet_invoices.c.paid_at.is_(None))
        .values(paid_at=now)
    )
    return str(row[0])


def pay_and_credit(
    conn: Connection, pubkey_hex: str, bolt11: str, now: float
) -> tuple[str, TopupInvoice | None, bool]:
    """`farebox dev pay`: settle the invoice and credit its top-up in one transaction (the
    server's poller or a status call would credit it too; the transfer id keeps it once)."""
    preimage = pay_invoice(conn, pubkey_hex, bolt11, now)
    payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    topup = invoices.find_by_backend_id(conn, NAME, payment_hash)
    if topup is None:
        return preimage, None, False
    after, credited = invoices.apply_status(conn, topup.id, BackendStatus(PayState.PAID), now)
    return preimage, after, credited


class DevWallet:
    name = NAME
    capabilities = Capabilities(
        methods=frozenset({Method.LIGHTNING}), webhooks=False, fiat_amounts=False
    )

    def __init__(self, db: Database, secret: str) -> None:
        self.db = db
        self._key = dev_wallet_key(secret)
        self.pubkey = self._key.public_key.format().hex()

    async def create_invoice(self, request: InvoiceRequest) -> CreatedInvoice:
        now = time.time()
        preimage = os.urandom(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        tags = Tags()
        tags.add(TagChar.payment_hash, payment_hash)
        tags.add(TagChar.payment_secret, os.urandom(32).hex())
        tags.add(TagChar.description, request.memo)
        tags.add(TagChar.expire_time, request.expiry_s)
        amount_msat = request.sats * 1000
        invoice = Bolt11(
            currency="bcrt",
            amount_msat=MilliSatoshi(amount_msat),
            date=int(now),
            tags=tags,
        )
        bolt11 = encode(invoice, self._key.to_hex())
        expires_at = float(int(now) + request.expiry_s)
        await self.db.write(
            _insert,
            {
                "payment_hash": payment_hash,
                "bolt11": bolt11,
                "amount_msat": amount_msat,
                "preimage": preimage.hex(),
                "created_at": now,
                "expires_at": expires_at,
                "paid_at": None,
            },
        )
        return CreatedInvoice(
            backend_invoice_id=payment_hash,
            expires_at=expires_at,
            bolt11=bolt11,
            payment_uri="lightning:" + bolt11,
        )

    async def invoice_status(self, backend_invoice_id: str) -> BackendStatus:
        found = await self.db.read(_status, backend_invoice_id)
        if found is None:
            return BackendStatus(PayState.FAILED, FailReason.INVALID)
        expires_at, paid_at = found
        if paid_at is not None:
            return BackendStatus(PayState.PAID)
        if expires_at < time.time():
            return BackendStatus(PayState.FAILED, FailReason.EXPIRED)
        return BackendStatus(PayState.PENDING)

    async def pay(self, bolt11: str) -> str:
        """Pay one of this wallet's invoices; returns the preimage."""
        return await self.db.write(pay_invoice, self.pubkey, bolt11, time.time())

    async def pay_and_credit(self, bolt11: str) -> tuple[str, TopupInvoice | None, bool]:
        """What `farebox dev pay` asks for: pay, and credit the top-up it opened (if any)."""
        return await self.db.write(pay_and_credit, self.pubkey, bolt11, time.time())

    def webhook_invoice_id(self, headers: Mapping[str, str], body: bytes) -> str:
        raise WebhookRejected("The dev wallet sends no webhooks.")

    async def close(self) -> None:
        return None
