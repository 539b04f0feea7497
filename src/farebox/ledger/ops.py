"""Ledger operations as functions of one open transaction (`conn`).

Every balance change is a transfer row written in the same transaction as the account update,
and every debit of a customer account is a conditional UPDATE (`... WHERE available >= amount`),
so two processes can never both spend the last nanodollar. Rows are locked in one order
(customer accounts by id, then keys by id, then system accounts) so batches never deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Table,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from farebox.db.schema import accounts, transfers
from farebox.db.session import Session, run_in
from farebox.errors import Conflict, InsufficientFunds, NotFound
from farebox.ledger import statements as sql
from farebox.ledger.types import (
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    SYSTEM_ACCOUNTS,
    Balance,
    Transfer,
)


def create_customer_account(
    conn: Connection, account_id: str, now: float | None = None, kind: str = "customer"
) -> None:
    """An account that may not go below zero: a customer's (its id is its public account id,
    never the credit_id), or a paid 402 credential's (kind "pay402", which has no credit_id)."""
    conn.execute(
        insert(accounts).values(
            id=account_id,
            kind=kind,
            flags=DEBITS_MUST_NOT_EXCEED_CREDITS,
            debits_pending=0,
            debits_posted=0,
            credits_pending=0,
            credits_posted=0,
            created_at=now or time.time(),
        )
    )


def account_exists(conn: Connection, account_id: str) -> bool:
    row = conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first()
    return row is not None


def get_balance(conn: Connection, account_id: str) -> Balance | None:
    row = conn.execute(
        select(
            accounts.c.credits_posted, accounts.c.debits_posted, accounts.c.debits_pending
        ).where(accounts.c.id == account_id)
    ).first()
    if row is None:
        return None
    return Balance(int(row[0]), int(row[1]), int(row[2]))


def _insert_ignore(conn: Connection, table: Table, values: dict[str, object]) -> int:
    """INSERT that does nothing on a duplicate primary key; returns the rows inserted (0 or 1)."""
    dialect = conn.dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    # RETURNING, not rowcount: psycopg reports rowcount -1 for INSERT ... ON CONFLICT DO NOTHING.
    pk = list(table.primary_key.columns)
    rows = conn.execute(stmt.values(**values).on_conflict_do_nothing().returning(*pk)).fetchall()
    return len(rows)


def transfer(conn: Connection, t: Transfer, now: float | None = None) -> bool:
    """Apply an immediate transfer once. Returns False when this id was already applied.

    A replay with the same id but different accounts or amount raises Conflict. Raises
    InsufficientFunds when the debit account may not go below zero and cannot pay.
    """
    if t.amount <= 0:
        raise ValueError("a transfer amount must be positive")
    now = time.time() if now is None else now
    inserted = _insert_ignore(
        conn,
        transfers,
        {
            "id": t.id,
            "debit_account_id": t.debit_account_id,
            "credit_account_id": t.credit_account_id,
            "amount": t.amount,
            "pending_id": None,
            "timeout_at": None,
            "code": str(t.code),
            "flags": 0,
            "key_id": None,
            "ref": t.ref,
            "created_at": now,
        },
    )
    if not inserted:
        row = conn.execute(
            select(
                transfers.c.debit_account_id, transfers.c.credit_account_id, transfers.c.amount
            ).where(transfers.c.id == t.id)
        ).one()
        if (row[0], row[1], int(row[2])) != (t.debit_account_id, t.credit_account_id, t.amount):
            raise Conflict(f"transfer {t.id} already exists with different accounts or amount")
        return False
    # Customer side first, then system side: the house lock order.
    sides = sorted(
        [(t.debit_account_id, "debit"), (t.credit_account_id, "credit")],
        key=lambda s: (s[0] in SYSTEM_ACCOUNTS, s[0]),
    )
    for account_id, side in sides:
        if side == "debit":
            res = conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .where(
                    or_(
                        accounts.c.flags.op("&")(DEBITS_MUST_NOT_EXCEED_CREDITS) == 0,
                        t.amount <= sql.AVAILABLE,
                    )
                )
                .values(debits_posted=accounts.c.debits_posted + t.amount)
            )
            if res.rowcount != 1:
                if not account_exists(conn, account_id):
                    raise NotFound(f"account {account_id} does not exist")
                raise InsufficientFunds(f"account {account_id} cannot pay {t.amount} nanodollars")
        else:
            res = conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(credits_posted=accounts.c.credits_posted + t.amount)
            )
            if res.rowcount != 1:
                raise NotFound(f"account {account_id} does not exist")
    return True


def record_progress(
    conn: Connection, request_id: str, recorded: int, recovery: str | None, timeout_at: float
) -> None:
    """Note delivered usage on a running request (for crash recovery) and push out its timeout."""
    run_in(conn, renew_holds, [Renewal(request_id, timeout_at, recorded, recovery)])


@dataclass(frozen=True, slots=True)
class Renewal:
    """A live request's holds get a new timeout and, if known, the usage delivered so far."""

    request_id: str
    timeout_at: float
    recorded: int | None = None
    recovery: str | None = None


async def renew_holds(session: Session, renewals: Sequence[Renewal]) -> None:
    """Keep live requests' holds from timing out (one statement for all of them)."""
    renewals = sorted(renewals, key=lambda r: r.request_id)  # one lock order: no deadlocks
    await session.executemany(
        sql.RETIME_HOLDS, [{"p_request": r.request_id, "p_timeout": r.timeout_at} for r in renewals]
    )
    await session.executemany(
        sql.RECORD_PROGRESS,
        [
            {"p_request": r.request_id, "p_recorded": r.recorded, "p_recovery": r.recovery}
            for r in renewals
            if r.recorded is not None
        ],
    )
