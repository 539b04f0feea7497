"""Ledger operations as functions of one open transaction (`conn`).

Every balance change is a transfer row written in the same transaction as the account update,
and every debit of a customer account is a conditional UPDATE (`... WHERE available >= amount`),
so two processes can never both spend the last nanodollar. Rows are locked in one order
(customer accounts by id, then keys by id, then system accounts) so batches never deadlock.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    Connection,
    Table,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from farebox.db.schema import accounts, api_keys, holds, transfers
from farebox.errors import Conflict, InsufficientFunds, NotFound
from farebox.ledger import statements as sql
from farebox.ledger.types import (
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    PENDING,
    POST_PENDING,
    SYSTEM_ACCOUNTS,
    VOID_PENDING,
    Balance,
    HoldRequest,
    HoldResult,
    KeyBudget,
    QueryRecord,
    Refusal,
    Settlement,
    SettleResult,
    Transfer,
)


def create_customer_account(conn: Connection, account_id: str, now: float | None = None) -> None:
    conn.execute(
        insert(accounts).values(
            id=account_id,
            kind="customer",
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


# ---------------------------------------------------------------------------------------------
# Holds (pending transfers)


def _hold_key(conn: Connection, key: KeyBudget, amount: int, now: float) -> bool:
    """Reserve `amount` on the key's period counter, if the key is live and under its limit."""
    return (
        sql.HOLD_KEY.rowcount(
            conn,
            {
                "p_key": key.key_id,
                "p_now": now,
                "p_generation": key.generation,
                "p_period": key.period_key,
                "p_amount": amount,
            },
        )
        == 1
    )


def _key_remaining(conn: Connection, key: KeyBudget, now: float) -> tuple[Refusal | None, int]:
    """Why a key hold failed, or how much it can still take (None = unlimited -> huge)."""
    row = conn.execute(
        select(
            api_keys.c.revoked_at,
            api_keys.c.expire_at,
            api_keys.c.period_generation,
            api_keys.c.usage_limit,
            api_keys.c.period_key,
            api_keys.c.period_posted,
            api_keys.c.period_pending,
        ).where(api_keys.c.id == key.key_id)
    ).first()
    if row is None or row.revoked_at is not None:
        return Refusal.KEY_INVALID, 0
    if row.expire_at is not None and row.expire_at <= now:
        return Refusal.KEY_INVALID, 0
    if row.period_generation != key.generation:
        return Refusal.KEY_INVALID, 0  # the key changed under us: caller reloads and retries
    if row.usage_limit is None:
        return None, 1 << 62
    posted = int(row.period_posted) if row.period_key == key.period_key else 0
    return None, max(0, int(row.usage_limit) - posted - int(row.period_pending))


def _debit_pending(conn: Connection, account_id: str, amount: int) -> bool:
    return sql.DEBIT_PENDING.rowcount(conn, {"p_account": account_id, "p_amount": amount}) == 1


def _release_pending(conn: Connection, account_id: str, amount: int) -> None:
    sql.RELEASE_PENDING.rowcount(conn, {"p_account": account_id, "p_amount": amount})


def _hold_one(conn: Connection, req: HoldRequest, now: float) -> HoldResult:
    if req.want <= 0:  # nothing to hold (a negative want would lower debits_pending unrecorded)
        return HoldResult(req.transfer_id, 0)
    amount = req.want
    if not _debit_pending(conn, req.account_id, amount):
        bal = get_balance(conn, req.account_id)
        if bal is None:
            return HoldResult(req.transfer_id, 0, Refusal.NO_ACCOUNT)
        amount = min(req.want, bal.available)
        if amount < req.minimum or amount <= 0 or not _debit_pending(conn, req.account_id, amount):
            return HoldResult(req.transfer_id, 0, Refusal.FUNDS, balance=bal)
    if req.key is not None and not _hold_key(conn, req.key, amount, now):
        refusal, remaining = _key_remaining(conn, req.key, now)
        smaller = min(amount, remaining)
        if (
            refusal is not None
            or smaller < req.minimum
            or smaller <= 0
            or not _hold_key(conn, req.key, smaller, now)
        ):
            _release_pending(conn, req.account_id, amount)
            return HoldResult(
                req.transfer_id,
                0,
                refusal or Refusal.KEY_LIMIT,
                balance=get_balance(conn, req.account_id),
                key_remaining=remaining,
            )
        _release_pending(conn, req.account_id, amount - smaller)
        amount = smaller
    return HoldResult(req.transfer_id, amount)


def hold_batch(
    conn: Connection, requests: Sequence[HoldRequest], now: float | None = None
) -> list[HoldResult]:
    """Take many holds in one transaction; each succeeds or is refused on its own."""
    now = time.time() if now is None else now
    order = sorted(range(len(requests)), key=lambda i: (requests[i].account_id, i))
    results: list[HoldResult | None] = [None] * len(requests)
    for i in order:
        results[i] = _hold_one(conn, requests[i], now)
    transfer_rows: list[dict[str, object]] = []
    hold_rows: list[dict[str, object]] = []
    credit_totals: dict[str, int] = defaultdict(int)
    for req, res in zip(requests, results, strict=True):
        assert res is not None
        if res.held <= 0:
            continue
        credit_totals[req.credit_account_id] += res.held
        transfer_rows.append(
            {
                "id": req.transfer_id,
                "debit_account_id": req.account_id,
                "credit_account_id": req.credit_account_id,
                "amount": res.held,
                "pending_id": None,
                "timeout_at": req.timeout_at,
                "code": str(req.code),
                "flags": PENDING,
                "key_id": req.key.key_id if req.key else None,
                "ref": req.request_id,
                "created_at": now,
            }
        )
        hold_rows.append(
            {
                "transfer_id": req.transfer_id,
                "request_id": req.request_id,
                "seq": req.seq,
                "account_id": req.account_id,
                "credit_account_id": req.credit_account_id,
                "key_id": req.key.key_id if req.key else None,
                "amount": res.held,
                "expires_at": req.timeout_at,
                "recorded": 0,
                "recovery": req.recovery,
            }
        )
    if transfer_rows:
        sql.INSERT_TRANSFERS.executemany(conn, transfer_rows)
        sql.INSERT_HOLDS.executemany(conn, hold_rows)
    for req, res in zip(requests, results, strict=True):
        assert res is not None
        if res.held > 0 and req.seq > 0:
            # An extension: push out the timeout of the request's earlier holds, and record
            # what has been delivered so far so a crash posts it rather than voiding it.
            values: dict[str, object] = {"expires_at": req.timeout_at}
            conn.execute(update(holds).where(holds.c.request_id == req.request_id).values(**values))
            if req.recorded is not None:
                conn.execute(
                    update(holds)
                    .where(holds.c.request_id == req.request_id)
                    .where(holds.c.seq == 0)
                    .values(recorded=req.recorded, recovery=req.recovery)
                )
    if credit_totals:
        sql.CREDIT_PENDING.executemany(
            conn,
            [{"p_account": a, "p_amount": credit_totals[a]} for a in sorted(credit_totals)],
        )
    return [r for r in results if r is not None]


def record_progress(
    conn: Connection, request_id: str, recorded: int, recovery: str | None, timeout_at: float
) -> None:
    """Note delivered usage on a running request (for crash recovery) and push out its timeout."""
    renew_holds(conn, [Renewal(request_id, timeout_at, recorded, recovery)])


@dataclass(frozen=True, slots=True)
class Renewal:
    """A live request's holds get a new timeout and, if known, the usage delivered so far."""

    request_id: str
    timeout_at: float
    recorded: int | None = None
    recovery: str | None = None


def renew_holds(conn: Connection, renewals: Sequence[Renewal]) -> None:
    """Keep live requests' holds from timing out (one statement for all of them)."""
    renewals = sorted(renewals, key=lambda r: r.request_id)  # one lock order: no deadlocks
    sql.RETIME_HOLDS.executemany(
        conn, [{"p_request": r.request_id, "p_timeout": r.timeout_at} for r in renewals]
    )
    sql.RECORD_PROGRESS.executemany(
        conn,
        [
            {"p_request": r.request_id, "p_recorded": r.recorded, "p_recovery": r.recovery}
            for r in renewals
            if r.recorded is not None
        ],
    )


# ---------------------------------------------------------------------------------------------
# Settlement: post the actual cost (<= held) and void the rest


def settle_batch(
    conn: Connection, settlements: Sequence[Settlement], now: float | None = None
) -> list[SettleResult]:
    now = time.time() if now is None else now
    all_ids = [tid for s in settlements for tid, _ in s.holds]
    live: set[str] = set()
    if all_ids:
        # Whoever deletes the open-hold row resolves the pending transfer (settle vs sweeper).
        for transfer_id in sorted(set(all_ids)):  # one lock order for every transaction
            if sql.RESOLVE_HOLD.rowcount(conn, {"p_id": transfer_id}) == 1:
                live.add(transfer_id)
    # What was already posted on holds this batch does not own (a sweeper posted recorded usage,
    # or an earlier settlement of the same request): that much of `actual` is already charged.
    taken: dict[str, int] = {}
    gone = [tid for tid in all_ids if tid not in live]
    for chunk in _chunks(gone, 500):
        taken.update(
            (r[0], int(r[1]))
            for r in conn.execute(
                select(transfers.c.pending_id, transfers.c.amount)
                .where(transfers.c.pending_id.in_(chunk))
                .where(transfers.c.flags == POST_PENDING)
            )
        )
    transfer_rows: list[dict[str, object]] = []
    query_rows: list[dict[str, object]] = []
    account_delta: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # pending-, posted+
    key_delta: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    credit_delta: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    results: list[SettleResult] = []
    for s in settlements:
        swept = [tid for tid, _ in s.holds if tid not in live]
        # Money is only ever charged with its history row: without one, a settlement voids.
        actual = s.actual if s.query is not None else 0
        remaining = max(0, actual - sum(taken.get(tid, 0) for tid in swept))
        posted = 0
        for transfer_id, amount in s.holds:
            if transfer_id not in live:
                continue
            live.discard(transfer_id)  # a hold is resolved once, even if named twice in a batch
            take = min(remaining, amount)
            remaining -= take
            posted += take
            taken[transfer_id] = take
            transfer_rows.append(
                {
                    "id": transfer_id + ".r",
                    "debit_account_id": s.account_id,
                    "credit_account_id": s.credit_account_id,
                    "amount": take if take > 0 else amount,
                    "pending_id": transfer_id,
                    "timeout_at": None,
                    "code": "query",
                    "flags": POST_PENDING if take > 0 else VOID_PENDING,
                    "key_id": s.key_id,
                    "ref": s.request_id,
                    "created_at": now,
                }
            )
            account_delta[s.account_id][0] += amount
            account_delta[s.account_id][1] += take
            credit_delta[s.credit_account_id][0] += amount
            credit_delta[s.credit_account_id][1] += take
            if s.key_id is not None:
                key_delta[s.key_id][0] += amount
                key_delta[s.key_id][1] += take
        if s.query is not None and (posted > 0 or not swept):
            query_rows.append(_query_row(s, posted, now))
        results.append(SettleResult(s.request_id, posted, lost=remaining, swept_holds=tuple(swept)))
    _apply_settle_deltas(conn, account_delta, key_delta, credit_delta)
    if transfer_rows:
        sql.INSERT_TRANSFERS.executemany(conn, transfer_rows)
    if query_rows:
        sql.UPSERT_QUERIES.executemany(conn, query_rows)
    return results


def _apply_settle_deltas(
    conn: Connection,
    account_delta: dict[str, list[int]],
    key_delta: dict[str, list[int]],
    credit_delta: dict[str, list[int]],
) -> None:
    """Customer accounts, then keys, then system accounts: the house lock order."""
    if account_delta:
        sql.SETTLE_DEBIT.executemany(
            conn,
            [
                {"p_account": a, "p_released": account_delta[a][0], "p_posted": account_delta[a][1]}
                for a in sorted(account_delta)
            ],
        )
    if key_delta:
        sql.SETTLE_KEY.executemany(
            conn,
            [
                {"p_key": k, "p_released": key_delta[k][0], "p_posted": key_delta[k][1]}
                for k in sorted(key_delta)
            ],
        )
    if credit_delta:
        sql.SETTLE_CREDIT.executemany(
            conn,
            [
                {"p_account": a, "p_released": credit_delta[a][0], "p_posted": credit_delta[a][1]}
                for a in sorted(credit_delta)
            ],
        )


def _query_row(s: Settlement, price: int, now: float) -> dict[str, object]:
    q = s.query
    assert q is not None
    return {
        "request_id": s.request_id,
        "account_id": s.account_id,
        "key_id": s.key_id,
        "created_at": s.created_at or now,
        "model": q.model,
        "input_count": q.input_count,
        "output_count": q.output_count,
        "price": price,
        "query_type": q.query_type,
        "query_source": q.query_source,
        "is_online": q.is_online,
        "is_free_model": q.is_free_model,
    }


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---------------------------------------------------------------------------------------------
# Sweeper: resolve holds whose process died or forgot them


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
