"""Helpers for the ledger tests: open a migrated database, make accounts and keys, audit the
ledger's rows independently of `check_ledger`, and the worker run by spawned OS processes.

Kept free of pytest, hypothesis and the web stack so a spawned child imports it quickly.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from farebox.db.database import Database
from farebox.db.schema import accounts, api_keys, holds, queries, transfers
from farebox.ledger import ops, tick
from farebox.ledger.types import (
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    GRANTS,
    PENDING,
    POST_PENDING,
    SYSTEM_ACCOUNTS,
    VOID_PENDING,
    Code,
    HoldRequest,
    KeyBudget,
    Transfer,
)

NANOS = 1_000_000_000
T0 = 1_800_000_000.0  # a fixed "now" for tests that pass time explicitly (never 0: ops read 0 as unset)


def open_db(url: str, threads: int = 4) -> Database:
    from farebox.db.migrate import upgrade_to_head  # alembic: not needed in spawned workers

    db = Database(url, threads=threads)
    upgrade_to_head(db.engine)
    return db


def uid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:16]


def wipe(conn: Connection) -> None:
    """Empty the ledger (between hypothesis examples): system accounts back to zero."""
    for table in (transfers, holds, queries, api_keys):
        conn.execute(delete(table))
    conn.execute(delete(accounts).where(accounts.c.id.not_in(SYSTEM_ACCOUNTS)))
    conn.execute(
        update(accounts).values(
            debits_pending=0, debits_posted=0, credits_pending=0, credits_posted=0
        )
    )


def grant(conn: Connection, account_id: str, amount: int, transfer_id: str | None = None) -> bool:
    return ops.transfer(
        conn, Transfer(transfer_id or uid("grant."), GRANTS, account_id, amount, Code.GRANT)
    )


def funded_account(conn: Connection, amount: int, account_id: str | None = None) -> str:
    account_id = account_id or uid("acct-")
    ops.create_customer_account(conn, account_id)
    if amount > 0:
        grant(conn, account_id, amount)
    return account_id


def add_key(
    conn: Connection,
    account_id: str,
    usage_limit: int | None,
    *,
    expire_at: float | None = None,
    revoked_at: float | None = None,
    key_id: str | None = None,
) -> str:
    """An api_keys row straight into the table (the ledger only needs its counters)."""
    key_id = key_id or uid("k")
    now = time.time()
    conn.execute(
        insert(api_keys).values(
            id=key_id,
            account_id=account_id,
            name=key_id,
            key_hash=uid("hash-") + key_id,
            key_encrypted="x",
            key_hint="x",
            usage_limit=usage_limit,
            reset_period=None,
            period_generation=0,
            period_key="",
            period_posted=0,
            period_pending=0,
            total_posted=0,
            expire_at=expire_at,
            created_at=now,
            updated_at=now,
            revoked_at=revoked_at,
        )
    )
    return key_id


def budget(key_id: str, period: str = "p0", generation: int = 0) -> KeyBudget:
    return KeyBudget(key_id, period, generation)


@dataclass(frozen=True)
class AccountRow:
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    flags: int


def account_row(conn: Connection, account_id: str) -> AccountRow:
    r = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
    return AccountRow(
        int(r.debits_pending),
        int(r.debits_posted),
        int(r.credits_pending),
        int(r.credits_posted),
        int(r.flags),
    )


@dataclass(frozen=True)
class KeyRow:
    usage_limit: int | None
    period_key: str
    period_posted: int
    period_pending: int
    total_posted: int


def key_row(conn: Connection, key_id: str) -> KeyRow:
    r = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
    return KeyRow(
        None if r.usage_limit is None else int(r.usage_limit),
        r.period_key,
        int(r.period_posted),
        int(r.period_pending),
        int(r.total_posted),
    )


def transfers_of(conn: Connection, ref: str) -> list[dict[str, object]]:
    rows = conn.execute(
        select(transfers).where(transfers.c.ref == ref).order_by(transfers.c.id)
    ).fetchall()
    return [dict(r._mapping) for r in rows]


def resolution_of(conn: Connection, pending_id: str) -> dict[str, object] | None:
    r = conn.execute(select(transfers).where(transfers.c.pending_id == pending_id)).first()
    return None if r is None else dict(r._mapping)


def query_rows(conn: Connection, request_id: str) -> list[dict[str, object]]:
    rows = conn.execute(select(queries).where(queries.c.request_id == request_id)).fetchall()
    return [dict(r._mapping) for r in rows]


def open_hold_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(holds)).scalar_one())


def audit(conn: Connection) -> list[str]:
    """The ledger's invariants, recomputed here from raw rows (independently of check.py)."""
    problems: list[str] = []
    acct = {r.id: r for r in conn.execute(select(accounts)).fetchall()}
    rows = conn.execute(select(transfers)).fetchall()
    by_id = {t.id: t for t in rows}
    open_ids = {h.transfer_id: h for h in conn.execute(select(holds)).fetchall()}
    derived: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    resolutions: dict[str, int] = defaultdict(int)
    for t in rows:
        amount = int(t.amount)
        if amount <= 0:
            problems.append(f"transfer {t.id} amount {amount} is not positive")
        if t.flags == PENDING:
            if t.id in open_ids:
                derived[t.debit_account_id][0] += amount
                derived[t.credit_account_id][2] += amount
            continue
        if t.flags in (POST_PENDING, VOID_PENDING):
            resolutions[t.pending_id] += 1
            p = by_id.get(t.pending_id)
            if p is None or p.flags != PENDING:
                problems.append(f"{t.id} resolves {t.pending_id}, not a pending transfer")
                continue
            if (t.debit_account_id, t.credit_account_id) != (
                p.debit_account_id,
                p.credit_account_id,
            ):
                problems.append(f"{t.id} resolves {p.id} between different accounts")
            if t.flags == POST_PENDING and amount > int(p.amount):
                problems.append(f"{t.id} posts {amount} > held {p.amount}")
            if t.flags == VOID_PENDING:
                continue
        elif t.flags != 0:
            problems.append(f"transfer {t.id} has flags {t.flags}")
        derived[t.debit_account_id][1] += amount
        derived[t.credit_account_id][3] += amount
    for t in rows:
        if t.flags == PENDING:
            n = resolutions.get(t.id, 0) + (t.id in open_ids)
            if n != 1:
                problems.append(
                    f"pending {t.id}: {resolutions.get(t.id, 0)} resolutions, open={t.id in open_ids}"
                )
    for pid, n in resolutions.items():
        if n > 1:
            problems.append(f"pending {pid} resolved {n} times")
    totals = [0, 0, 0, 0]
    for a in acct.values():
        stored = [
            int(a.debits_pending),
            int(a.debits_posted),
            int(a.credits_pending),
            int(a.credits_posted),
        ]
        totals = [x + y for x, y in zip(totals, stored, strict=True)]
        if stored != derived.get(a.id, [0, 0, 0, 0]):
            problems.append(f"account {a.id} {stored} != sum of transfers {derived.get(a.id)}")
        if a.flags & DEBITS_MUST_NOT_EXCEED_CREDITS and stored[0] + stored[1] > stored[3]:
            problems.append(f"account {a.id} below zero: {stored}")
        if min(stored) < 0:
            problems.append(f"account {a.id} has a negative counter {stored}")
    if totals[0] != totals[2] or totals[1] != totals[3]:
        problems.append(f"debits != credits: {totals}")
    for k in conn.execute(select(api_keys)).fetchall():
        pending = sum(int(h.amount) for h in open_ids.values() if h.key_id == k.id)
        if int(k.period_pending) != pending:
            problems.append(f"key {k.id} pending {k.period_pending} != open holds {pending}")
        if k.usage_limit is not None and int(k.period_posted) + int(k.period_pending) > int(
            k.usage_limit
        ):
            problems.append(f"key {k.id} over its limit: {k.period_posted}+{k.period_pending}")
        if int(k.period_pending) < 0 or int(k.period_posted) < 0:
            problems.append(f"key {k.id} has a negative counter")
    return problems


# ---------------------------------------------------------------------------------------------
# Workers for the cross-process tests (each runs in a spawned child with its own Database)


def hold_worker(
    url: str,
    account_id: str,
    key_id: str | None,
    amount: int,
    attempts: int,
    tag: str,
    barrier: Any,
) -> tuple[str, int, int, list[str], int]:
    """Try `attempts` holds of exactly `amount`: (tag, held, refused, problems seen, pid)."""
    db = Database(url, threads=1)
    held = refused = 0
    problems: list[str] = []
    try:
        barrier.wait(120)
        for i in range(attempts):
            req = HoldRequest(
                transfer_id=f"{tag}.{i}",
                request_id=f"{tag}.{i}",
                seq=0,
                account_id=account_id,
                want=amount,
                minimum=amount,
                timeout_at=time.time() + 3600,
                key=None if key_id is None else budget(key_id),
            )
            (res,) = db.write_sync(tick.hold_batch, [req])
            if res.ok:
                held += 1
                if res.held != amount:
                    problems.append(f"{req.transfer_id} held {res.held} != {amount}")
            else:
                refused += 1
            row = db.read_sync(account_row, account_id)
            if row.debits_pending + row.debits_posted > row.credits_posted:
                problems.append(f"account below zero: {row}")
            if key_id is not None:
                k = db.read_sync(key_row, key_id)
                if k.usage_limit is not None and k.period_posted + k.period_pending > k.usage_limit:
                    problems.append(f"key over its limit: {k}")
    except Exception as exc:  # reported, never swallowed
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        db.close()
    return tag, held, refused, problems, os.getpid()


def grant_worker(
    url: str, account_id: str, ids: list[str], amount: int, tag: str, barrier: Any
) -> tuple[str, int, int, list[str], int]:
    """Replay the same grant ids as every other process: (tag, applied, 0, problems, pid)."""
    db = Database(url, threads=1)
    applied = 0
    problems: list[str] = []
    try:
        barrier.wait(120)
        for gid in ids:
            if db.write_sync(grant, account_id, amount, gid):
                applied += 1
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        db.close()
    return tag, applied, 0, problems, os.getpid()
