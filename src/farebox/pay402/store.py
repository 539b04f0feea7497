"""Paid credentials on the ledger (functions of one transaction).

A verified payment is money in: on first presentation it gets a row here (primary key: its
payment hash), its own ledger account (kind "pay402", may not go below zero) and one transfer
`topups -> that account` for the price it was issued at, all in one transaction, so however
many replicas see it at once it is credited once. Requests are then held and charged from that
account like any customer's: the ledger's conditional debit is what lets one payment buy its
request once, and a voided hold (the upstream failed) leaves the money there for a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from farebox.db.schema import pay402_credentials
from farebox.ledger import ops as ledger_ops
from farebox.ledger.types import TOPUPS, Code, Transfer
from farebox.pay402.types import Claims

ACCOUNT_KIND = "pay402"


def account_id_for(payment_id: str) -> str:
    return f"pay402:{payment_id[:57]}"


def transfer_id_for(payment_id: str) -> str:
    return f"pay402.{payment_id[:56]}"


@dataclass(frozen=True, slots=True)
class Credited:
    """A payment's redemption row: the account it was credited to, and until when it serves."""

    payment_id: str
    account_id: str
    scheme: str
    endpoint: str
    price_nanos: int
    sats: int
    paid_at: float
    retry_until: float
    credited_now: bool = False


def _credited(row: Any, credited_now: bool) -> Credited:
    return Credited(
        payment_id=row.payment_id,
        account_id=row.account_id,
        scheme=row.scheme,
        endpoint=row.endpoint,
        price_nanos=int(row.price_nanos),
        sats=int(row.sats),
        paid_at=float(row.paid_at),
        retry_until=float(row.retry_until),
        credited_now=credited_now,
    )


def find(conn: Connection, payment_id: str) -> Credited | None:
    row = conn.execute(
        select(pay402_credentials).where(pay402_credentials.c.payment_id == payment_id)
    ).first()
    return None if row is None else _credited(row, False)


def credit_once(conn: Connection, claims: Claims, now: float, retry_s: float) -> Credited:
    """Record and credit a verified payment, or return its row if it already was."""
    account_id = account_id_for(claims.payment_id)
    inserted = ledger_ops._insert_ignore(
        conn,
        pay402_credentials,
        {
            "payment_id": claims.payment_id,
            "account_id": account_id,
            "scheme": claims.scheme,
            "endpoint": claims.endpoint,
            "price_nanos": claims.price_nanos,
            "sats": claims.sats,
            "paid_at": now,
            "retry_until": now + retry_s,
        },
    )
    if inserted:
        ledger_ops.create_customer_account(conn, account_id, now, kind=ACCOUNT_KIND)
        ledger_ops.transfer(
            conn,
            Transfer(
                transfer_id_for(claims.payment_id),
                TOPUPS,
                account_id,
                claims.price_nanos,
                Code.PAY402,
                ref=f"{claims.scheme}:{claims.payment_id}",
            ),
            now,
        )
    row = conn.execute(
        select(pay402_credentials).where(pay402_credentials.c.payment_id == claims.payment_id)
    ).one()
    return _credited(row, bool(inserted))
