"""What the operator's console lists from the ledger: customer accounts with their balances,
and the holds open right now (requests in flight, or left by a process that died)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from farebox.db.schema import accounts, holds
from farebox.ledger.types import Balance

MAX_LISTED = 200


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: str
    created_at: float
    balance: Balance


@dataclass(frozen=True, slots=True)
class AccountPage:
    rows: list[AccountRow]
    total: int


@dataclass(frozen=True, slots=True)
class OpenHold:
    transfer_id: str
    request_id: str
    account_id: str
    key_id: str | None
    amount: int
    expires_at: float
    recorded: int


def customer_accounts(
    conn: Connection, id_prefix: str = "", limit: int = 50, offset: int = 0
) -> AccountPage:
    """Customer accounts, newest first, optionally those whose public id starts with
    `id_prefix` (LIKE wildcards in it match themselves)."""
    limit = max(1, min(limit, MAX_LISTED))
    conditions = [accounts.c.kind == "customer"]
    if id_prefix:
        escaped = id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(accounts.c.id.like(escaped + "%", escape="\\"))
    total = conn.execute(select(func.count()).select_from(accounts).where(*conditions))
    rows = conn.execute(
        select(accounts)
        .where(*conditions)
        .order_by(accounts.c.created_at.desc(), accounts.c.id)
        .limit(limit)
        .offset(max(0, offset))
    ).fetchall()
    return AccountPage(
        rows=[
            AccountRow(
                account_id=r.id,
                created_at=float(r.created_at),
                balance=Balance(
                    credits_posted=int(r.credits_posted),
                    debits_posted=int(r.debits_posted),
                    debits_pending=int(r.debits_pending),
                ),
            )
            for r in rows
        ],
        total=int(total.scalar_one()),
    )


def open_holds(conn: Connection, limit: int = 100) -> tuple[list[OpenHold], int, int]:
    """The open holds that expire first (up to `limit`), how many are open, and their sum."""
    limit = max(1, min(limit, MAX_LISTED))
    count, amount = conn.execute(
        select(func.count(), func.coalesce(func.sum(holds.c.amount), 0)).select_from(holds)
    ).one()
    rows = conn.execute(select(holds).order_by(holds.c.expires_at).limit(limit)).fetchall()
    listed = [
        OpenHold(
            transfer_id=r.transfer_id,
            request_id=r.request_id,
            account_id=r.account_id,
            key_id=r.key_id,
            amount=int(r.amount),
            expires_at=float(r.expires_at),
            recorded=int(r.recorded),
        )
        for r in rows
    ]
    return listed, int(count), int(amount)
