"""Holds and settlements: the ledger's hot path, as functions of one open transaction.

A tick is one transaction carrying everything that is due: settlements of finished requests and
holds for new ones. Rows are locked in one order in every transaction (the `holds` rows being
resolved, then each customer account by id followed by its keys, then the system accounts), so
ticks in different processes never deadlock. Under load one statement serves every request of
an account; a request that cannot have all it asked for is held on its own, which finds out how
much it gets.

Pipelined (PostgreSQL), a tick first assumes the common case (every hold it settles is open,
everyone can afford what they want) and sends all its statements without waiting for any
answer; each checks its part of the assumption on the server and fails the tick when it is
false (`CheckFailed`). The gateway runs that attempt as an implicit transaction of its own (one
round trip, no BEGIN or COMMIT) and, should it fail, the tick step by step in a transaction; in
a transaction (`tick`) it is tried under a savepoint. On SQLite, where a statement costs no
round trip, a tick goes step by step at once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from farebox.db.compiled import CompiledStatement, json_rows
from farebox.db.session import CheckFailed, Session, Update, run_in
from farebox.ledger import statements as sql
from farebox.ledger.ops import Renewal, renew_holds
from farebox.ledger.types import (
    PENDING,
    POST_PENDING,
    VOID_PENDING,
    Balance,
    HoldRequest,
    HoldResult,
    KeyBudget,
    Refusal,
    Settlement,
    SettleResult,
)

TickResults = tuple[list[SettleResult], list[HoldResult]]


async def tick(
    session: Session,
    settlements: Sequence[Settlement],
    requests: Sequence[HoldRequest],
    now: float | None = None,
) -> TickResults:
    """Settle `settlements` and then take the holds in `requests`, in one transaction."""
    if now is None:
        now = time.time()
    if session.pipelined and may_tick_at_once(requests):
        await session.send(sql.SAVEPOINT, {})
        try:
            return await tick_at_once(session, settlements, requests, now)
        except CheckFailed:
            await session.recover()
            await session.send(sql.ROLLBACK_TO_SAVEPOINT, {})
    return await tick_step_by_step(session, settlements, requests, now)


def may_tick_at_once(requests: Sequence[HoldRequest]) -> bool:
    """Whether `tick_at_once` can take these holds (it cannot take a hold of nothing)."""
    return all(req.want > 0 for req in requests)


async def tick_at_once(
    session: Session,
    settlements: Sequence[Settlement],
    requests: Sequence[HoldRequest],
    now: float,
) -> TickResults:
    """The tick of the common case, PostgreSQL only: each hold it settles is still open, and
    each account and key can afford all its requests want. Every statement is sent at once and
    the answers are waited for once, at the end (one round trip); a statement whose part of
    that assumption is false fails, and with it the tick (`CheckFailed`): the caller then
    takes the tick step by step. Meant for `Database.transact(..., at_once=True)`, or under a
    savepoint."""
    ids = sorted({tid for s in settlements for tid, _ in s.holds})
    plan = _plan(settlements, set(ids), {}, now)
    held = [HoldResult(req.transfer_id, req.want) for req in requests]
    hold_rows = _hold_rows(requests, held, now, plan.credits)
    transfer_rows = plan.transfer_rows + hold_rows.transfers
    await session.send(
        sql.RESOLVE_AND_RECORD,
        {
            "p_ids": ids,
            "p_claims": len(ids),
            "p_transfers": json_rows(transfer_rows),
            "p_moves": len(transfer_rows),
            "p_holds": json_rows(hold_rows.holds),
            "p_queries": json_rows(plan.query_rows),
        },
    )
    by_account = _by_account(requests)
    updates: list[Update] = []
    for account_id in sorted(set(plan.accounts) | set(by_account)):
        group = [requests[i] for i in by_account.get(account_id, ())]
        updates += _settle_and_hold(plan, account_id, group, now)
    updates += _credit_updates(plan.credits)
    await session.send_together(updates)
    await _extend_timeouts(session, requests, held)
    await session.sync()
    return plan.results, held


def _settle_and_hold(
    plan: _SettlePlan, account_id: str, group: Sequence[HoldRequest], now: float
) -> list[Update]:
    """One account's settlement and its requests' holds in full, a row changed by one UPDATE
    where it can be; an UPDATE taking a hold that does not fit changes no row, which fails
    the tick."""
    if not group:
        return plan.account_updates(account_id)
    released, posted = plan.accounts.get(account_id, (0, 0))
    total, per_key = _totals(group)
    updates = [
        _account_update(
            sql.SETTLE_AND_DEBIT,
            {
                "p_account": account_id,
                "p_released": released,
                "p_posted": posted,
                "p_amount": total,
            },
            must_change_one=True,
        )
    ]
    settling = plan.keys.get(account_id, {})
    holding: dict[str, list[tuple[KeyBudget, int]]] = defaultdict(list)
    for key, amount in per_key:
        holding[key.key_id].append((key, amount))
    for key_id in sorted(set(settling) | set(holding)):
        holds = holding.get(key_id, [])
        if len(holds) == 1:  # one KeyBudget: its settlement (if any) and hold in one UPDATE
            key, amount = holds[0]
            released, posted = settling.get(key_id, (0, 0))
            params = {**_key_params(key, amount, now), "p_released": released, "p_posted": posted}
            updates.append(_key_update(sql.SETTLE_AND_HOLD_KEY, params, must_change_one=True))
            continue
        if key_id in settling:
            updates.append(plan.key_update(account_id, key_id))
        updates += [
            _key_update(sql.HOLD_KEY, _key_params(key, amount, now), must_change_one=True)
            for key, amount in holds
        ]
    return updates


async def tick_step_by_step(
    session: Session,
    settlements: Sequence[Settlement],
    requests: Sequence[HoldRequest],
    now: float,
) -> TickResults:
    """The tick when some hold was already swept or some request cannot have all it wants:
    each answer is read before the next step depends on it."""
    plan = _plan(settlements, *await _resolve(session, settlements), now)
    by_account = _by_account(requests)
    held: list[HoldResult | None] = [None] * len(requests)
    for account_id in sorted(set(plan.accounts) | set(by_account)):
        await _send_each(session, plan.account_updates(account_id))
        indexes = by_account.get(account_id)
        if not indexes:
            continue
        group = [requests[i] for i in indexes]
        results = await _hold_account(session, group, now)
        for i, result in zip(indexes, results, strict=True):
            held[i] = result
    hold_results = [r for r in held if r is not None]
    await _write(session, plan, requests, hold_results, now)
    return plan.results, hold_results


def _by_account(requests: Sequence[HoldRequest]) -> dict[str, list[int]]:
    by_account: dict[str, list[int]] = defaultdict(list)
    for i, req in enumerate(requests):
        by_account[req.account_id].append(i)
    return by_account


async def _write(
    session: Session,
    plan: _SettlePlan,
    requests: Sequence[HoldRequest],
    hold_results: Sequence[HoldResult],
    now: float,
) -> None:
    """The rows of a tick: transfers, open holds, renewals, history, and the system side."""
    hold_rows = _hold_rows(requests, hold_results, now, plan.credits)
    await session.executemany(sql.INSERT_TRANSFERS, plan.transfer_rows + hold_rows.transfers)
    await session.executemany(sql.INSERT_HOLDS, hold_rows.holds)
    await _extend_timeouts(session, requests, hold_results)
    await session.executemany(sql.UPSERT_QUERIES, plan.query_rows)
    await _send_each(session, _credit_updates(plan.credits))


def _credit_updates(credits: dict[str, list[int]]) -> list[Update]:
    """The system side of a tick: one UPDATE per system account, netted."""
    return [
        _account_update(
            sql.SETTLE_CREDIT, {"p_account": a, "p_released": released, "p_posted": posted}
        )
        for a, (released, posted) in sorted(credits.items())
    ]


def ledger_tick(
    conn: Connection,
    settlements: Sequence[Settlement],
    requests: Sequence[HoldRequest],
    now: float | None = None,
) -> TickResults:
    """`tick` on the open transaction of a SQLAlchemy connection."""
    return run_in(conn, tick, settlements, requests, now)


def hold_batch(
    conn: Connection, requests: Sequence[HoldRequest], now: float | None = None
) -> list[HoldResult]:
    """Take many holds in one transaction; each succeeds or is refused on its own."""
    return ledger_tick(conn, (), requests, now)[1]


def settle_batch(
    conn: Connection, settlements: Sequence[Settlement], now: float | None = None
) -> list[SettleResult]:
    """Post each settlement's actual cost (<= held) and void the rest, in one transaction."""
    return ledger_tick(conn, settlements, (), now)[0]


# ---------------------------------------------------------------------------------------------
# Holds (pending transfers)


def _key_params(key: KeyBudget, amount: int, now: float) -> dict[str, object]:
    return {
        "p_key": key.key_id,
        "p_now": now,
        "p_generation": key.generation,
        "p_period": key.period_key,
        "p_amount": amount,
    }


async def _hold_key(session: Session, key: KeyBudget, amount: int, now: float) -> bool:
    """Reserve `amount` on the key's period counter, if the key is live and under its limit."""
    return await session.rowcount(sql.HOLD_KEY, _key_params(key, amount, now)) == 1


async def _key_remaining(
    session: Session, key: KeyBudget, now: float
) -> tuple[Refusal | None, int]:
    """Why a key hold failed, or how much it can still take (None = unlimited -> huge)."""
    rows = await session.fetch(sql.KEY_STATE, {"p_key": key.key_id})
    if not rows:
        return Refusal.KEY_INVALID, 0
    revoked_at, expire_at, generation, usage_limit, period_key, posted, pending = rows[0]
    if revoked_at is not None or (expire_at is not None and expire_at <= now):
        return Refusal.KEY_INVALID, 0
    if generation != key.generation:
        return Refusal.KEY_INVALID, 0  # the key changed under us: caller reloads and retries
    if usage_limit is None:
        return None, 1 << 62
    posted = int(posted) if period_key == key.period_key else 0
    return None, max(0, int(usage_limit) - posted - int(pending))


async def _balance(session: Session, account_id: str) -> Balance | None:
    rows = await session.fetch(sql.BALANCE, {"p_account": account_id})
    return Balance(int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None


async def _debit_pending(session: Session, account_id: str, amount: int) -> bool:
    return (
        await session.rowcount(sql.DEBIT_PENDING, {"p_account": account_id, "p_amount": amount})
        == 1
    )


async def _release_pending(session: Session, account_id: str, amount: int) -> None:
    await session.send(sql.RELEASE_PENDING, {"p_account": account_id, "p_amount": amount})


async def _hold_one(session: Session, req: HoldRequest, now: float) -> HoldResult:
    if req.want <= 0:  # nothing to hold (a negative want would lower debits_pending unrecorded)
        return HoldResult(req.transfer_id, 0)
    amount = req.want
    if not await _debit_pending(session, req.account_id, amount):
        bal = await _balance(session, req.account_id)
        if bal is None:
            return HoldResult(req.transfer_id, 0, Refusal.NO_ACCOUNT)
        amount = min(req.want, bal.available)
        if (
            amount < req.minimum
            or amount <= 0
            or not await _debit_pending(session, req.account_id, amount)
        ):
            return HoldResult(req.transfer_id, 0, Refusal.FUNDS, balance=bal)
    if req.key is not None and not await _hold_key(session, req.key, amount, now):
        refusal, remaining = await _key_remaining(session, req.key, now)
        smaller = min(amount, remaining)
        if (
            refusal is not None
            or smaller < req.minimum
            or smaller <= 0
            or not await _hold_key(session, req.key, smaller, now)
        ):
            await _release_pending(session, req.account_id, amount)
            return HoldResult(
                req.transfer_id,
                0,
                refusal or Refusal.KEY_LIMIT,
                balance=await _balance(session, req.account_id),
                key_remaining=remaining,
            )
        await _release_pending(session, req.account_id, amount - smaller)
        amount = smaller
    return HoldResult(req.transfer_id, amount)


async def _hold_together(session: Session, group: Sequence[HoldRequest], now: float) -> bool:
    """Hold every request of one account in full with one statement per account and key.

    The common case under load: many requests of one account, all affordable. Returns False,
    having changed nothing, when any of them cannot have all it wants (the caller then holds
    them one by one, which finds out who gets how much). The keys' statements go out together
    and their row counts are read once (one round trip on PostgreSQL).
    """
    if any(req.want <= 0 for req in group):
        return False
    account_id = group[0].account_id
    total, per_key = _totals(group)
    if not await _debit_pending(session, account_id, total):
        return False  # before any key is touched: a refusal leaves the key rows as they were
    key_holds = [
        (key, amount, await session.execute(sql.HOLD_KEY, _key_params(key, amount, now)))
        for key, amount in per_key
    ]
    await session.sync()
    held = [(key, amount) for key, amount, cursor in key_holds if cursor.rowcount == 1]
    if len(held) == len(key_holds):
        return True
    for key, amount in held:
        await session.send(sql.RELEASE_KEY, {"p_key": key.key_id, "p_amount": amount})
    await session.send(sql.RELEASE_PENDING, {"p_account": account_id, "p_amount": total})
    return False


def _totals(group: Sequence[HoldRequest]) -> tuple[int, list[tuple[KeyBudget, int]]]:
    """What one account's requests want in all, and from each key (in lock order); keys are
    told apart by a tuple of their fields (a KeyBudget's own hash is Python code)."""
    per_key: dict[tuple[str, str, int], tuple[KeyBudget, int]] = {}
    for req in group:
        if (key := req.key) is not None:
            ident = (key.key_id, key.period_key, key.generation)
            per_key[ident] = (key, per_key.get(ident, (key, 0))[1] + req.want)
    return sum(req.want for req in group), [per_key[ident] for ident in sorted(per_key)]


async def _hold_account(
    session: Session, group: Sequence[HoldRequest], now: float
) -> list[HoldResult]:
    if await _hold_together(session, group, now):
        return [HoldResult(req.transfer_id, req.want) for req in group]
    return [await _hold_one(session, req, now) for req in group]


@dataclass(slots=True)
class _HoldRows:
    transfers: list[dict[str, object]] = field(default_factory=list)
    holds: list[dict[str, object]] = field(default_factory=list)


def _hold_rows(
    requests: Sequence[HoldRequest],
    results: Sequence[HoldResult],
    now: float,
    credits: dict[str, list[int]],
) -> _HoldRows:
    """The pending transfers and open-hold rows of the holds taken; adds their credit side to
    `credits` (account -> [pending released, posted]: a new hold releases a negative amount)."""
    rows = _HoldRows()
    for req, res in zip(requests, results, strict=True):
        if res.held <= 0:
            continue
        credits.setdefault(req.credit_account_id, [0, 0])[0] -= res.held
        key_id = req.key.key_id if req.key else None
        rows.transfers.append(
            {
                "id": req.transfer_id,
                "debit_account_id": req.account_id,
                "credit_account_id": req.credit_account_id,
                "amount": res.held,
                "pending_id": None,
                "timeout_at": req.timeout_at,
                "code": str(req.code),
                "flags": PENDING,
                "key_id": key_id,
                "ref": req.request_id,
                "created_at": now,
            }
        )
        rows.holds.append(
            {
                "transfer_id": req.transfer_id,
                "request_id": req.request_id,
                "seq": req.seq,
                "account_id": req.account_id,
                "credit_account_id": req.credit_account_id,
                "key_id": key_id,
                "amount": res.held,
                "expires_at": req.timeout_at,
                "recorded": 0,
                "recovery": req.recovery,
            }
        )
    return rows


async def _extend_timeouts(
    session: Session, requests: Sequence[HoldRequest], results: Sequence[HoldResult]
) -> None:
    """An extension pushes out the timeout of its request's earlier holds, and records what has
    been delivered so far so a crash posts it rather than voiding it."""
    renewals = [
        Renewal(req.request_id, req.timeout_at, req.recorded, req.recovery)
        for req, res in zip(requests, results, strict=True)
        if res.held > 0 and req.seq > 0
    ]
    if renewals:
        await renew_holds(session, renewals)


# ---------------------------------------------------------------------------------------------
# Settlement: post the actual cost (<= held) and void the rest


@dataclass(slots=True)
class _SettlePlan:
    """What settling a batch writes; the holds it resolves are already claimed."""

    results: list[SettleResult] = field(default_factory=list)
    transfer_rows: list[dict[str, object]] = field(default_factory=list)
    query_rows: list[dict[str, object]] = field(default_factory=list)
    accounts: dict[str, list[int]] = field(default_factory=dict)  # [pending released, posted]
    keys: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # account -> key -> same
    credits: dict[str, list[int]] = field(default_factory=dict)

    def add(
        self, account_id: str, key_id: str | None, credit_id: str, held: int, take: int
    ) -> None:
        for delta in (
            self.accounts.setdefault(account_id, [0, 0]),
            self.credits.setdefault(credit_id, [0, 0]),
            *(
                [self.keys.setdefault(account_id, {}).setdefault(key_id, [0, 0])]
                if key_id is not None
                else []
            ),
        ):
            delta[0] += held
            delta[1] += take

    def account_updates(self, account_id: str) -> list[Update]:
        """The customer side of this account's settlements: the account, then its keys."""
        delta = self.accounts.get(account_id)
        if delta is None:
            return []
        return [
            _account_update(
                sql.SETTLE_DEBIT,
                {"p_account": account_id, "p_released": delta[0], "p_posted": delta[1]},
            ),
            *(
                self.key_update(account_id, key_id)
                for key_id in sorted(self.keys.get(account_id, {}))
            ),
        ]

    def key_update(self, account_id: str, key_id: str) -> Update:
        released, posted = self.keys[account_id][key_id]
        return _key_update(
            sql.SETTLE_KEY, {"p_key": key_id, "p_released": released, "p_posted": posted}
        )


def _account_update(
    stmt: CompiledStatement, params: dict[str, Any], must_change_one: bool = False
) -> Update:
    return Update(stmt, params, must_change_one, ("accounts", params["p_account"]))


def _key_update(
    stmt: CompiledStatement, params: dict[str, Any], must_change_one: bool = False
) -> Update:
    return Update(stmt, params, must_change_one, ("api_keys", params["p_key"]))


async def _send_each(session: Session, updates: Sequence[Update]) -> None:
    for update in updates:
        await session.send(update.stmt, update.params)


async def _resolve(
    session: Session, settlements: Sequence[Settlement]
) -> tuple[set[str], dict[str, int]]:
    """Claim the settlements' holds that are still open (`live`), and read what was already
    posted on the others (`taken`)."""
    all_ids = [tid for s in settlements for tid, _ in s.holds]
    live: set[str] = set()
    # Whoever deletes the open-hold row resolves the pending transfer (settle vs sweeper).
    for chunk in _chunks(sorted(set(all_ids)), 500):  # one lock order for every transaction
        live.update(row[0] for row in await session.fetch_in(sql.RESOLVE_HOLDS, "p_ids", chunk))
    # What was already posted on holds this batch does not own (a sweeper posted recorded usage,
    # or an earlier settlement of the same request): that much of `actual` is already charged.
    taken: dict[str, int] = {}
    gone = [tid for tid in all_ids if tid not in live]
    for chunk in _chunks(gone, 500):
        rows = await session.fetch_in(sql.POSTED_ON, "p_ids", chunk, {"p_flags": POST_PENDING})
        taken.update((r[0], int(r[1])) for r in rows)
    return live, taken


def _plan(
    settlements: Sequence[Settlement], live: set[str], taken: dict[str, int], now: float
) -> _SettlePlan:
    """What settling writes, given the holds it claimed (`live`, consumed) and what was
    already posted on the others (`taken`)."""
    plan = _SettlePlan()
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
            plan.transfer_rows.append(
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
            plan.add(s.account_id, s.key_id, s.credit_account_id, amount, take)
        if s.query is not None and (posted > 0 or not swept):
            plan.query_rows.append(_query_row(s, posted, now))
        plan.results.append(
            SettleResult(s.request_id, posted, lost=remaining, swept_holds=tuple(swept))
        )
    return plan


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
        "attestation": q.attestation,
        "reconcile": q.reconcile,
    }


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[i : i + size] for i in range(0, len(items), size))
