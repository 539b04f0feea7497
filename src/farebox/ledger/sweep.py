"""The sweeper's work: resolve the holds of requests whose process died or forgot them.

Each hold row carries the usage delivered so far and the history row to write (`recovery`), so a
swept request posts what it delivered and voids the rest.
"""

from __future__ import annotations

import time
from collections import defaultdict

import orjson
from sqlalchemy import Connection, select

from farebox.db.schema import holds
from farebox.ledger.tick import settle_batch
from farebox.ledger.types import QueryRecord, Settlement


def encode_recovery(query: QueryRecord) -> str:
    return orjson.dumps(
        {
            "model": query.model,
            "input_count": query.input_count,
            "output_count": query.output_count,
            "query_type": query.query_type,
            "query_source": query.query_source,
            "is_online": query.is_online,
            "is_free_model": query.is_free_model,
            "attestation": query.attestation,
            "reconcile": query.reconcile,
        }
    ).decode()


def _decode_recovery(raw: str | None) -> QueryRecord | None:
    if not raw:
        return None
    data = orjson.loads(raw)
    return QueryRecord(**data)


def sweep_expired(conn: Connection, now: float | None = None, limit: int = 500) -> int:
    """Resolve every request that has an expired hold: post its recorded usage, void the rest.

    Returns the number of requests resolved.
    """
    now = time.time() if now is None else now
    expired = conn.execute(
        select(holds.c.request_id).where(holds.c.expires_at < now).distinct().limit(limit)
    ).fetchall()
    request_ids = [r[0] for r in expired]
    if not request_ids:
        return 0
    rows = conn.execute(
        select(holds)
        .where(holds.c.request_id.in_(request_ids))
        .order_by(holds.c.account_id, holds.c.request_id, holds.c.seq)
    ).fetchall()
    by_request: dict[str, list[object]] = defaultdict(list)
    for row in rows:
        by_request[row.request_id].append(row)
    settlements = []
    for request_id, hold_rows in by_request.items():
        first = hold_rows[0]
        recorded = max(int(getattr(r, "recorded", 0) or 0) for r in hold_rows)
        query = None
        for r in hold_rows:
            query = query or _decode_recovery(getattr(r, "recovery", None))
        if query is not None:
            query = QueryRecord(
                model=query.model,
                input_count=query.input_count,
                output_count=query.output_count,
                query_type=query.query_type,
                query_source="recovered",
                is_online=query.is_online,
                is_free_model=query.is_free_model,
                attestation=query.attestation,
                reconcile=query.reconcile,
            )
        settlements.append(
            Settlement(
                request_id=request_id,
                account_id=first.account_id,  # type: ignore[attr-defined]
                key_id=first.key_id,  # type: ignore[attr-defined]
                holds=tuple((r.transfer_id, int(r.amount)) for r in hold_rows),  # type: ignore[attr-defined]
                actual=recorded if query is not None else 0,
                query=query,
                credit_account_id=first.credit_account_id,  # type: ignore[attr-defined]
            )
        )
    results = settle_batch(conn, settlements, now)
    # A request whose holds a concurrent settlement deleted first was not resolved here.
    return sum(
        1 for s, r in zip(settlements, results, strict=True) if len(r.swept_holds) < len(s.holds)
    )
