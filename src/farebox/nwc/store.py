"""NWC connections and attempts in the database (functions of one transaction)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from farebox.db.schema import nwc_attempts, nwc_connections


@dataclass(frozen=True, slots=True)
class NwcConnection:
    account_id: str
    wallet_pubkey: str
    relays: tuple[str, ...]
    uri_encrypted: str
    threshold_nanos: int
    topup_nanos: int
    created_at: float
    updated_at: float
    busy_until: float | None
    next_attempt_at: float | None
    failures: int
    last_attempt_at: float | None
    last_success_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class NwcAttempt:
    id: str
    account_id: str
    invoice_id: str | None
    started_at: float
    finished_at: float | None
    outcome: str  # running | paid | failed | unconfirmed
    error: str | None


def _connection(row: Row[Any]) -> NwcConnection:
    data = dict(row._mapping)
    data["relays"] = tuple(json.loads(data["relays"]))
    data["threshold_nanos"] = int(data["threshold_nanos"])
    data["topup_nanos"] = int(data["topup_nanos"])
    data["failures"] = int(data["failures"])
    return NwcConnection(**data)


def get_connection(conn: Connection, account_id: str) -> NwcConnection | None:
    row = conn.execute(
        select(nwc_connections).where(nwc_connections.c.account_id == account_id)
    ).first()
    return None if row is None else _connection(row)


def save_connection(
    conn: Connection,
    account_id: str,
    wallet_pubkey: str,
    relays: tuple[str, ...],
    uri_encrypted: str,
    threshold_nanos: int,
    topup_nanos: int,
    now: float | None = None,
) -> NwcConnection:
    """Connect, or replace the account's connection (its failure history starts over)."""
    now = now or time.time()
    conn.execute(delete(nwc_connections).where(nwc_connections.c.account_id == account_id))
    conn.execute(
        insert(nwc_connections).values(
            account_id=account_id,
            wallet_pubkey=wallet_pubkey,
            relays=json.dumps(list(relays)),
            uri_encrypted=uri_encrypted,
            threshold_nanos=threshold_nanos,
            topup_nanos=topup_nanos,
            created_at=now,
            updated_at=now,
            busy_until=None,
            next_attempt_at=None,
            failures=0,
        )
    )
    saved = get_connection(conn, account_id)
    assert saved is not None
    return saved


def delete_connection(conn: Connection, account_id: str) -> bool:
    res = conn.execute(delete(nwc_connections).where(nwc_connections.c.account_id == account_id))
    return bool(res.rowcount)


def claim(conn: Connection, account_id: str, now: float, lease_s: float) -> NwcConnection | None:
    """Take the account's single attempt slot (across replicas), if no attempt runs and no
    backoff is pending. The lease ends an attempt whose process died."""
    col = nwc_connections.c
    res = conn.execute(
        update(nwc_connections)
        .where(col.account_id == account_id)
        .where((col.busy_until.is_(None)) | (col.busy_until < now))
        .where((col.next_attempt_at.is_(None)) | (col.next_attempt_at <= now))
        .values(busy_until=now + lease_s, last_attempt_at=now)
    )
    if res.rowcount != 1:
        return None
    return get_connection(conn, account_id)


def start_attempt(conn: Connection, attempt_id: str, account_id: str, now: float) -> None:
    conn.execute(
        insert(nwc_attempts).values(
            id=attempt_id, account_id=account_id, started_at=now, outcome="running"
        )
    )


def finish_attempt(
    conn: Connection,
    attempt_id: str,
    account_id: str,
    *,
    outcome: str,
    invoice_id: str | None,
    error: str | None,
    retry_at: float | None,
    now: float,
) -> None:
    conn.execute(
        update(nwc_attempts)
        .where(nwc_attempts.c.id == attempt_id)
        .values(outcome=outcome, invoice_id=invoice_id, error=error, finished_at=now)
    )
    col = nwc_connections.c
    values: dict[str, Any] = {"busy_until": None, "next_attempt_at": retry_at}
    if outcome == "paid":
        values |= {"failures": 0, "last_success_at": now, "last_error": None}
    else:
        values |= {"failures": col.failures + 1, "last_error": error}
    conn.execute(update(nwc_connections).where(col.account_id == account_id).values(**values))


def recent_attempts(conn: Connection, account_id: str, limit: int = 10) -> list[NwcAttempt]:
    rows = conn.execute(
        select(nwc_attempts)
        .where(nwc_attempts.c.account_id == account_id)
        .order_by(nwc_attempts.c.started_at.desc())
        .limit(limit)
    )
    return [NwcAttempt(**dict(r._mapping)) for r in rows]


def due_retries(conn: Connection, now: float, limit: int = 100) -> list[str]:
    col = nwc_connections.c
    rows = conn.execute(
        select(col.account_id)
        .where(col.failures > 0)
        .where(col.next_attempt_at <= now)
        .where((col.busy_until.is_(None)) | (col.busy_until < now))
        .limit(limit)
    )
    return [r[0] for r in rows]
