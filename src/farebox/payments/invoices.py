"""Top-up invoice rows, and crediting a paid one exactly once (functions of one transaction).

Status policy (stated in the README and tested):
- `paid`: the backend says settled. Credit the USD value fixed at creation, once, by the transfer
  `topup_transfer_id(backend, backend_invoice_id)`. `paid` is final.
- overpaid (still `paid`, `overpaid` set): the fixed USD value is credited; the excess is not, and
  the admin view flags the invoice so the operator can refund it or grant it.
- `expired` / `underpaid` / `paid_late` / `invalid`: nothing is credited. The invoice stays
  visible to the operator; if the backend later settles it (e.g. the operator marks it settled in
  BTCPay after a late or partial payment), the next webhook, poll or status call credits it once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from farebox.db.schema import topup_invoices
from farebox.isotime import iso_utc
from farebox.ledger import ops as ledger_ops
from farebox.ledger.types import TOPUPS, Code, Transfer
from farebox.money import format_usd
from farebox.payments.types import BackendStatus, FailReason, PayState

PENDING = "pending"
PAID = "paid"
STATUSES = (PENDING, PAID, *(str(r) for r in FailReason))


def topup_transfer_id(backend: str, backend_invoice_id: str) -> str:
    """The one transfer a backend invoice may ever become (fits the 64-character id column)."""
    digest = hashlib.sha256(f"{backend}\x00{backend_invoice_id}".encode()).hexdigest()
    return f"topup.{backend}.{digest[:40]}"[:64]


@dataclass(frozen=True, slots=True)
class TopupInvoice:
    id: str
    account_id: str
    backend: str
    backend_invoice_id: str
    method: str
    currency: str
    amount: str
    sats: int
    usd_nanos: int
    btc_usd: str
    bolt11: str | None
    address: str | None
    payment_uri: str | None
    amount_due: str | None
    checkout_url: str | None
    status: str
    overpaid: bool
    source: str
    transfer_id: str | None
    created_at: float
    expires_at: float
    updated_at: float
    checked_at: float | None
    paid_at: float | None

    @property
    def is_paid(self) -> bool:
        return self.status == PAID


def _row(row: Row[Any]) -> TopupInvoice:
    data = dict(row._mapping)
    data["sats"] = int(data["sats"])
    data["usd_nanos"] = int(data["usd_nanos"])
    data["overpaid"] = bool(data["overpaid"])
    return TopupInvoice(**data)


def insert_invoice(conn: Connection, invoice: TopupInvoice) -> None:
    values = {f: getattr(invoice, f) for f in TopupInvoice.__dataclass_fields__}
    conn.execute(insert(topup_invoices).values(**values))


def get_invoice(conn: Connection, invoice_id: str) -> TopupInvoice | None:
    row = conn.execute(select(topup_invoices).where(topup_invoices.c.id == invoice_id)).first()
    return None if row is None else _row(row)


def find_for_account(conn: Connection, account_id: str, any_id: str) -> TopupInvoice | None:
    """An account's invoice by our id or by the backend's (PPQ's status path takes BTCPay's)."""
    col = topup_invoices.c
    row = conn.execute(
        select(topup_invoices)
        .where(col.account_id == account_id)
        .where((col.id == any_id) | (col.backend_invoice_id == any_id))
        .order_by(col.created_at.desc())
        .limit(1)
    ).first()
    return None if row is None else _row(row)


def find_by_backend_id(
    conn: Connection, backend: str, backend_invoice_id: str
) -> TopupInvoice | None:
    row = conn.execute(
        select(topup_invoices)
        .where(topup_invoices.c.backend == backend)
        .where(topup_invoices.c.backend_invoice_id == backend_invoice_id)
    ).first()
    return None if row is None else _row(row)


def list_invoices(
    conn: Connection,
    *,
    account_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[TopupInvoice]:
    query = select(topup_invoices).order_by(topup_invoices.c.created_at.desc()).limit(limit)
    if account_id is not None:
        query = query.where(topup_invoices.c.account_id == account_id)
    if status is not None:
        query = query.where(topup_invoices.c.status == status)
    return [_row(r) for r in conn.execute(query)]


def due_for_check(conn: Connection, checked_before: float, limit: int) -> list[TopupInvoice]:
    """Pending invoices least recently checked first (the poller's work list)."""
    col = topup_invoices.c
    query = (
        select(topup_invoices)
        .where(col.status == PENDING)
        .where((col.checked_at.is_(None)) | (col.checked_at < checked_before))
        .order_by(col.checked_at.is_not(None), col.checked_at)
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(query)]


def apply_status(
    conn: Connection, invoice_id: str, status: BackendStatus, now: float | None = None
) -> tuple[TopupInvoice, bool]:
    """Record what the backend said. Returns (invoice after, whether this call credited it).

    Crediting and the status change share this transaction; the transfer id makes a concurrent
    or repeated call a no-op, so the account is credited once however many callers race.
    """
    now = now or time.time()
    invoice = get_invoice(conn, invoice_id)
    if invoice is None:
        raise LookupError(invoice_id)
    col = topup_invoices.c
    if invoice.is_paid:
        return invoice, False
    if status.state is PayState.PAID:
        transfer = Transfer(
            topup_transfer_id(invoice.backend, invoice.backend_invoice_id),
            TOPUPS,
            invoice.account_id,
            invoice.usd_nanos,
            Code.TOPUP,
            ref=invoice.id,
        )
        credited = ledger_ops.transfer(conn, transfer, now)
        conn.execute(
            update(topup_invoices)
            .where(col.id == invoice.id)
            .where(col.status != PAID)
            .values(
                status=PAID,
                overpaid=status.overpaid,
                transfer_id=transfer.id,
                paid_at=now,
                updated_at=now,
                checked_at=now,
            )
        )
    else:
        credited = False
        new_status = PENDING if status.state is PayState.PENDING else _failed(status.reason)
        conn.execute(
            update(topup_invoices)
            .where(col.id == invoice.id)
            .where(col.status != PAID)
            .values(status=new_status, updated_at=now, checked_at=now)
        )
    after = get_invoice(conn, invoice_id)
    assert after is not None
    return after, credited


def _failed(reason: FailReason | None) -> str:
    return str(reason or FailReason.EXPIRED)


def mark_checked(conn: Connection, invoice_id: str, now: float) -> None:
    conn.execute(
        update(topup_invoices).where(topup_invoices.c.id == invoice_id).values(checked_at=now)
    )


def admin_view(invoice: TopupInvoice) -> dict[str, Any]:
    """What the operator sees (CLI and admin API): amount in the paid currency and in USD."""
    return {
        "invoice_id": invoice.id,
        "account_id": invoice.account_id,
        "status": invoice.status,
        "method": invoice.method,
        "backend": invoice.backend,
        "backend_invoice_id": invoice.backend_invoice_id,
        "amount": invoice.amount,
        "currency": invoice.currency,
        "amount_sats": invoice.sats,
        "amount_due": invoice.amount_due,
        "amount_usd": format_usd(invoice.usd_nanos),
        "btc_usd_rate": invoice.btc_usd,
        "credited_usd": format_usd(invoice.usd_nanos) if invoice.is_paid else "0",
        "overpaid": invoice.overpaid,
        "source": invoice.source,
        "transfer_id": invoice.transfer_id,
        "created_at": iso_utc(invoice.created_at),
        "expires_at": iso_utc(invoice.expires_at),
        "paid_at": iso_utc(invoice.paid_at),
    }
