"""Unit tests of the ledger's transaction functions (`farebox.ledger.ops`), on real SQLite and real
PostgreSQL: holds (partial, refused, key limits, invalid keys), settlement (post <= held, void the
rest, one history row), the sweeper (recorded usage, recovered history), settle-after-sweep, and
immediate transfers (idempotent ids, conflicts, no overdraft)."""

from __future__ import annotations

import pytest
from ledger_support import (
    T0,
    account_row,
    add_key,
    audit,
    budget,
    funded_account,
    key_row,
    open_hold_count,
    query_rows,
    resolution_of,
    uid,
)
from sqlalchemy import func, select, update

from farebox.db.database import Database
from farebox.db.schema import api_keys, queries, transfers
from farebox.errors import Conflict, InsufficientFunds, NotFound
from farebox.ledger import ops, sweep, tick
from farebox.ledger.check import check_ledger
from farebox.ledger.types import (
    GRANTS,
    PENDING,
    POST_PENDING,
    REVENUE,
    VOID_PENDING,
    Balance,
    Code,
    HoldRequest,
    HoldResult,
    KeyBudget,
    QueryRecord,
    Refusal,
    Settlement,
    SettleResult,
    Transfer,
)

TIMEOUT = T0 + 60
LATER = T0 + 61  # past TIMEOUT: the sweeper resolves what is still open
QUERY = QueryRecord(model="m-1", input_count=11, output_count=22)


def assert_clean(db: Database) -> None:
    report = db.read_sync(check_ledger)
    assert report.ok, report.problems
    assert db.read_sync(audit) == []


def hold(
    db: Database,
    account_id: str,
    want: int,
    minimum: int,
    *,
    key: KeyBudget | None = None,
    request_id: str | None = None,
    seq: int = 0,
    timeout_at: float = TIMEOUT,
    recorded: int | None = None,
    recovery: str | None = None,
    now: float = T0,
) -> HoldResult:
    request_id = request_id or uid("req-")
    req = HoldRequest(
        transfer_id=f"{request_id}.{seq}",
        request_id=request_id,
        seq=seq,
        account_id=account_id,
        want=want,
        minimum=minimum,
        timeout_at=timeout_at,
        key=key,
        recorded=recorded,
        recovery=recovery,
    )
    (result,) = db.write_sync(tick.hold_batch, [req], now)
    return result


def settle(
    db: Database,
    account_id: str,
    request_id: str,
    held: list[tuple[str, int]],
    actual: int,
    *,
    key_id: str | None = None,
    query: QueryRecord | None = QUERY,
    now: float = T0 + 1,
) -> SettleResult:
    s = Settlement(
        request_id=request_id,
        account_id=account_id,
        key_id=key_id,
        holds=tuple(held),
        actual=actual,
        query=query,
    )
    (result,) = db.write_sync(tick.settle_batch, [s], now)
    return result


def pending_transfer(db: Database, transfer_id: str) -> dict[str, object]:
    row = db.read_sync(
        lambda c: c.execute(select(transfers).where(transfers.c.id == transfer_id)).one()
    )
    return dict(row._mapping)


def balance(db: Database, account_id: str) -> Balance:
    bal = db.read_sync(ops.get_balance, account_id)
    assert bal is not None
    return bal


def transfer_count(db: Database) -> int:
    return int(
        db.read_sync(lambda c: c.execute(select(func.count()).select_from(transfers)).scalar_one())
    )


# ---------------------------------------------------------------------------------------------
# Holds


def test_hold_takes_want_when_affordable(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    res = hold(db, acct, 400, 100, request_id="r1")
    assert res == HoldResult("r1.0", 400)
    assert balance(db, acct) == Balance(1000, 0, 400)
    t = pending_transfer(db, "r1.0")
    assert (t["flags"], t["amount"], t["debit_account_id"], t["credit_account_id"]) == (
        PENDING,
        400,
        acct,
        REVENUE,
    )
    assert t["timeout_at"] == TIMEOUT and t["ref"] == "r1"
    assert db.read_sync(account_row, REVENUE).credits_pending == 400
    assert_clean(db)


def test_hold_takes_what_is_available_between_minimum_and_want(db: Database) -> None:
    acct = db.write_sync(funded_account, 100)
    first = hold(db, acct, 30, 30)
    assert first.held == 30
    res = hold(db, acct, 150, 50)  # 70 available: more than the minimum, less than want
    assert res.ok and res.held == 70
    assert balance(db, acct).available == 0
    assert pending_transfer(db, res.transfer_id)["amount"] == 70
    assert_clean(db)


def test_hold_refuses_below_minimum_with_a_balance_snapshot(db: Database) -> None:
    acct = db.write_sync(funded_account, 100)
    hold(db, acct, 40, 40)
    before = transfer_count(db)
    res = hold(db, acct, 200, 61, request_id="poor")
    assert res.refusal is Refusal.FUNDS and res.held == 0 and not res.ok
    assert res.balance == Balance(100, 0, 40)
    assert res.balance.available == 60
    assert transfer_count(db) == before  # nothing written for a refusal
    assert balance(db, acct) == Balance(100, 0, 40)
    assert db.read_sync(open_hold_count) == 1
    assert_clean(db)


def test_hold_refuses_an_empty_account_even_with_zero_minimum(db: Database) -> None:
    acct = db.write_sync(funded_account, 0)
    res = hold(db, acct, 10, 0)
    assert res.refusal is Refusal.FUNDS and res.held == 0
    assert res.balance == Balance(0, 0, 0)
    assert transfer_count(db) == 0
    assert_clean(db)


def test_hold_on_a_missing_account(db: Database) -> None:
    res = hold(db, "no-such-account", 10, 1)
    assert res.refusal is Refusal.NO_ACCOUNT and res.held == 0
    assert transfer_count(db) == 0
    assert_clean(db)


def test_hold_batch_requests_succeed_or_fail_on_their_own(db: Database) -> None:
    acct = db.write_sync(funded_account, 100)
    other = db.write_sync(funded_account, 5)
    reqs = [
        HoldRequest(f"b{i}.0", f"b{i}", 0, a, want, want, TIMEOUT)
        for i, (a, want) in enumerate([(acct, 40), (other, 10), (acct, 40), (acct, 40), (other, 5)])
    ]
    results = db.write_sync(tick.hold_batch, reqs, T0)
    assert [r.transfer_id for r in results] == [r.transfer_id for r in reqs]
    assert [r.held for r in results] == [40, 0, 40, 0, 5]
    assert [r.refusal for r in results] == [None, Refusal.FUNDS, None, Refusal.FUNDS, None]
    assert balance(db, acct).available == 20 and balance(db, other).available == 0
    assert_clean(db)


# ---------------------------------------------------------------------------------------------
# Key budgets


def test_key_limit_caps_the_hold_then_refuses_with_key_remaining(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    key_id = db.write_sync(add_key, acct, 60)
    k = budget(key_id)
    refused = hold(db, acct, 100, 100, key=k)
    assert refused.refusal is Refusal.KEY_LIMIT and refused.key_remaining == 60
    assert refused.balance == Balance(1000, 0, 0)  # the account hold was released
    assert balance(db, acct) == Balance(1000, 0, 0)
    capped = hold(db, acct, 100, 10, key=k)
    assert capped.ok and capped.held == 60
    assert db.read_sync(key_row, key_id).period_pending == 60
    assert balance(db, acct) == Balance(1000, 0, 60)
    again = hold(db, acct, 5, 1, key=k)
    assert again.refusal is Refusal.KEY_LIMIT and again.key_remaining == 0
    assert_clean(db)


def test_key_budget_posts_usage_and_frees_the_rest(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    key_id = db.write_sync(add_key, acct, 100)
    res = hold(db, acct, 80, 80, key=budget(key_id), request_id="kr")
    settle(db, acct, "kr", [(res.transfer_id, res.held)], 30, key_id=key_id)
    row = db.read_sync(key_row, key_id)
    assert (row.period_posted, row.period_pending, row.total_posted) == (30, 0, 30)
    assert row.period_key == "p0"
    assert hold(db, acct, 71, 71, key=budget(key_id)).refusal is Refusal.KEY_LIMIT
    assert hold(db, acct, 70, 70, key=budget(key_id)).held == 70
    assert_clean(db)


def test_new_key_period_starts_from_zero(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    key_id = db.write_sync(add_key, acct, 100)
    res = hold(db, acct, 100, 100, key=budget(key_id, "day1"), request_id="d1")
    settle(db, acct, "d1", [(res.transfer_id, 100)], 100, key_id=key_id)
    assert hold(db, acct, 1, 1, key=budget(key_id, "day1")).refusal is Refusal.KEY_LIMIT
    nxt = hold(db, acct, 100, 100, key=budget(key_id, "day2"))
    assert nxt.held == 100
    row = db.read_sync(key_row, key_id)
    assert (row.period_key, row.period_posted, row.period_pending, row.total_posted) == (
        "day2",
        0,
        100,
        100,
    )
    assert_clean(db)


def test_unlimited_key_holds_whatever_the_account_has(db: Database) -> None:
    acct = db.write_sync(funded_account, 500)
    key_id = db.write_sync(add_key, acct, None)
    res = hold(db, acct, 800, 1, key=budget(key_id))
    assert res.held == 500
    assert db.read_sync(key_row, key_id).period_pending == 500
    assert_clean(db)


@pytest.mark.parametrize("how", ["revoked", "expired", "missing", "generation"])
def test_invalid_key_is_refused_and_nothing_is_held(db: Database, how: str) -> None:
    acct = db.write_sync(funded_account, 1000)
    if how == "revoked":
        key = budget(db.write_sync(lambda c: add_key(c, acct, None, revoked_at=T0 - 5)))
    elif how == "expired":
        key = budget(db.write_sync(lambda c: add_key(c, acct, 500, expire_at=T0)))
    elif how == "missing":
        key = budget("nokey")
    else:
        key = budget(db.write_sync(add_key, acct, 500), generation=1)
    res = hold(db, acct, 100, 1, key=key)
    assert res.refusal is Refusal.KEY_INVALID and res.held == 0
    assert balance(db, acct) == Balance(1000, 0, 0)
    assert transfer_count(db) == 1  # just the grant
    assert_clean(db)


def test_key_not_yet_expired_still_holds(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    key_id = db.write_sync(lambda c: add_key(c, acct, None, expire_at=T0 + 1))
    assert hold(db, acct, 10, 10, key=budget(key_id)).held == 10


# ---------------------------------------------------------------------------------------------
# Settlement


def test_settle_posts_actual_and_voids_the_rest(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    res = hold(db, acct, 300, 300, request_id="s1")
    out = settle(db, acct, "s1", [(res.transfer_id, 300)], 120)
    assert out == SettleResult("s1", 120)
    post = db.read_sync(resolution_of, "s1.0")
    assert post is not None
    assert (post["flags"], post["amount"], post["debit_account_id"], post["credit_account_id"]) == (
        POST_PENDING,
        120,
        acct,
        REVENUE,
    )
    assert balance(db, acct) == Balance(1000, 120, 0)
    rev = db.read_sync(account_row, REVENUE)
    assert (rev.credits_pending, rev.credits_posted) == (0, 120)
    (q,) = db.read_sync(query_rows, "s1")
    assert q["price"] == 120 and q["account_id"] == acct and q["model"] == "m-1"
    assert (q["input_count"], q["output_count"], q["query_source"]) == (11, 22, "api")
    assert db.read_sync(open_hold_count) == 0
    assert_clean(db)


def test_settle_zero_voids_the_whole_hold(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    res = hold(db, acct, 300, 300, request_id="s0")
    out = settle(db, acct, "s0", [(res.transfer_id, 300)], 0, query=None)
    assert out.posted == 0
    void = db.read_sync(resolution_of, "s0.0")
    assert void is not None and (void["flags"], void["amount"]) == (VOID_PENDING, 300)
    assert balance(db, acct) == Balance(1000, 0, 0)
    assert db.read_sync(query_rows, "s0") == []
    assert_clean(db)


def test_settle_never_posts_more_than_was_held(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    res = hold(db, acct, 300, 300, request_id="big")
    out = settle(db, acct, "big", [(res.transfer_id, 300)], 5000)
    assert out.posted == 300
    post = db.read_sync(resolution_of, "big.0")
    assert post is not None and (post["flags"], post["amount"]) == (POST_PENDING, 300)
    assert balance(db, acct) == Balance(1000, 300, 0)
    (q,) = db.read_sync(query_rows, "big")
    assert q["price"] == 300
    assert_clean(db)


@pytest.mark.parametrize(
    ("actual", "expect"),
    [
        (120, [(POST_PENDING, 100), (POST_PENDING, 20)]),
        (70, [(POST_PENDING, 70), (VOID_PENDING, 50)]),
        (150, [(POST_PENDING, 100), (POST_PENDING, 50)]),
        (0, [(VOID_PENDING, 100), (VOID_PENDING, 50)]),
    ],
)
def test_settle_spreads_actual_over_holds_in_order(
    db: Database, actual: int, expect: list[tuple[int, int]]
) -> None:
    acct = db.write_sync(funded_account, 1000)
    a = hold(db, acct, 100, 100, request_id="m", seq=0)
    b = hold(db, acct, 50, 50, request_id="m", seq=1)
    out = settle(db, acct, "m", [(a.transfer_id, 100), (b.transfer_id, 50)], actual)
    assert out.posted == min(actual, 150)
    got = []
    for tid in ("m.0", "m.1"):
        r = db.read_sync(resolution_of, tid)
        assert r is not None
        got.append((r["flags"], r["amount"]))
    assert got == expect
    assert balance(db, acct) == Balance(1000, min(actual, 150), 0)
    (q,) = db.read_sync(query_rows, "m")
    assert q["price"] == min(actual, 150)
    assert_clean(db)


def test_settlements_in_one_batch_each_write_their_row(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    key_id = db.write_sync(add_key, acct, 10_000)
    ss = []
    for i in range(5):
        r = hold(db, acct, 100, 100, key=budget(key_id), request_id=f"g{i}")
        ss.append(Settlement(f"g{i}", acct, key_id, ((r.transfer_id, 100),), i * 30, QUERY))
    results = db.write_sync(tick.settle_batch, ss, T0 + 1)
    assert [r.posted for r in results] == [0, 30, 60, 90, 100]
    assert balance(db, acct) == Balance(1000, 280, 0)
    k = db.read_sync(key_row, key_id)
    assert (k.period_posted, k.period_pending, k.total_posted) == (280, 0, 280)
    prices = db.read_sync(
        lambda c: c.execute(select(queries.c.price).order_by(queries.c.request_id)).scalars().all()
    )
    assert prices == [0, 30, 60, 90, 100]
    assert_clean(db)


def test_settling_twice_posts_once(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    r = hold(db, acct, 100, 100, request_id="twice")
    first = settle(db, acct, "twice", [(r.transfer_id, 100)], 60)
    again = settle(db, acct, "twice", [(r.transfer_id, 100)], 60)
    assert first.posted == 60
    assert again.posted == 0 and again.swept_holds == (r.transfer_id,)
    assert balance(db, acct) == Balance(1000, 60, 0)
    assert len(db.read_sync(query_rows, "twice")) == 1
    assert_clean(db)


def test_the_same_settlement_twice_in_one_batch_posts_once(db: Database) -> None:
    """A duplicated settlement must not poison the batch it rides in (the others commit)."""
    acct = db.write_sync(funded_account, 1000)
    r = hold(db, acct, 100, 100, request_id="dup")
    o = hold(db, acct, 100, 100, request_id="other")
    s = Settlement("dup", acct, None, ((r.transfer_id, 100),), 60, QUERY)
    other = Settlement("other", acct, None, ((o.transfer_id, 100),), 10, QUERY)
    results = db.write_sync(tick.settle_batch, [s, other, s], T0 + 1)
    assert [x.posted for x in results] == [60, 10, 0]
    assert balance(db, acct) == Balance(1000, 70, 0)
    assert_clean(db)


# ---------------------------------------------------------------------------------------------
# The sweeper


def test_sweep_voids_an_expired_hold_and_settle_after_it_reports_lost(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    r = hold(db, acct, 100, 100, request_id="late")
    assert db.write_sync(sweep.sweep_expired, TIMEOUT - 1) == 0  # not expired yet
    assert db.write_sync(sweep.sweep_expired, LATER) == 1
    void = db.read_sync(resolution_of, r.transfer_id)
    assert void is not None and (void["flags"], void["amount"]) == (VOID_PENDING, 100)
    assert balance(db, acct) == Balance(1000, 0, 0)
    before = transfer_count(db)
    out = settle(db, acct, "late", [(r.transfer_id, 100)], 40, now=LATER + 1)
    assert out.posted == 0 and out.lost == 40 and out.swept_holds == (r.transfer_id,)
    assert transfer_count(db) == before
    assert db.read_sync(query_rows, "late") == []
    assert balance(db, acct) == Balance(1000, 0, 0)
    assert_clean(db)


def test_sweep_posts_recorded_usage_with_a_recovered_history_row(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    key_id = db.write_sync(add_key, acct, 10_000)
    k = budget(key_id)
    a = hold(db, acct, 100, 100, key=k, request_id="crash")
    recovery = sweep.encode_recovery(QueryRecord("m-2", 5, 7, is_online=True))
    b = hold(
        db,
        acct,
        50,
        50,
        key=k,
        request_id="crash",
        seq=1,
        recorded=130,
        recovery=recovery,
        timeout_at=TIMEOUT + 30,
    )
    assert b.held == 50
    assert db.write_sync(sweep.sweep_expired, LATER) == 0  # the extension pushed the timeout out
    assert db.write_sync(sweep.sweep_expired, TIMEOUT + 31) == 1
    first = db.read_sync(resolution_of, a.transfer_id)
    second = db.read_sync(resolution_of, b.transfer_id)
    assert first is not None and second is not None
    assert (first["flags"], first["amount"]) == (POST_PENDING, 100)
    assert (second["flags"], second["amount"]) == (POST_PENDING, 30)
    assert balance(db, acct) == Balance(1000, 130, 0)
    (q,) = db.read_sync(query_rows, "crash")
    assert (q["price"], q["query_source"], q["model"], q["is_online"]) == (
        130,
        "recovered",
        "m-2",
        True,
    )
    assert (q["input_count"], q["output_count"], q["key_id"]) == (5, 7, key_id)
    kr = db.read_sync(key_row, key_id)
    assert (kr.period_posted, kr.period_pending, kr.total_posted) == (130, 0, 130)
    assert_clean(db)


def test_sweep_without_recovery_voids_everything(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    hold(db, acct, 100, 100, request_id="norec")
    hold(db, acct, 50, 50, request_id="norec", seq=1, recorded=80)
    assert db.write_sync(sweep.sweep_expired, LATER) == 1
    assert balance(db, acct) == Balance(1000, 0, 0)
    assert db.read_sync(query_rows, "norec") == []
    assert_clean(db)


def test_record_progress_pushes_out_the_timeout_and_is_posted_on_sweep(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    hold(db, acct, 100, 100, request_id="prog")
    recovery = sweep.encode_recovery(QUERY)
    db.write_sync(ops.record_progress, "prog", 45, recovery, TIMEOUT + 100)
    assert db.write_sync(sweep.sweep_expired, LATER) == 0
    assert db.write_sync(sweep.sweep_expired, TIMEOUT + 101) == 1
    assert balance(db, acct) == Balance(1000, 45, 0)
    (q,) = db.read_sync(query_rows, "prog")
    assert (q["price"], q["query_source"]) == (45, "recovered")
    assert_clean(db)


def test_settle_of_a_partly_swept_request_does_not_charge_twice(db: Database) -> None:
    """The sweeper posted recorded usage, then the (stalled, not dead) request extended and
    settled: the total charged is the request's actual cost, once, and history agrees."""
    acct = db.write_sync(funded_account, 1000)
    recovery = sweep.encode_recovery(QUERY)
    a = hold(db, acct, 100, 100, request_id="stall")
    b = hold(db, acct, 50, 50, request_id="stall", seq=1, recorded=60, recovery=recovery)
    assert db.write_sync(sweep.sweep_expired, LATER) == 1  # posts 60
    assert balance(db, acct) == Balance(1000, 60, 0)
    c = hold(
        db,
        acct,
        100,
        100,
        request_id="stall",
        seq=2,
        recorded=90,
        recovery=recovery,
        timeout_at=LATER + 60,
        now=LATER,
    )
    assert c.held == 100
    out = settle(
        db,
        acct,
        "stall",
        [(a.transfer_id, 100), (b.transfer_id, 50), (c.transfer_id, 100)],
        90,
        now=LATER + 1,
    )
    assert out.swept_holds == (a.transfer_id, b.transfer_id)
    assert out.posted == 30  # 90 in all, 60 of it already posted by the sweeper
    assert balance(db, acct) == Balance(1000, 90, 0)
    (q,) = db.read_sync(query_rows, "stall")
    assert q["price"] == 90
    assert_clean(db)


# ---------------------------------------------------------------------------------------------
# Immediate transfers


def test_transfer_with_the_same_id_applies_once(db: Database) -> None:
    acct = db.write_sync(funded_account, 0)
    t = Transfer("grant-1", GRANTS, acct, 500, Code.GRANT)
    assert db.write_sync(ops.transfer, t) is True
    assert db.write_sync(ops.transfer, t) is False
    assert db.write_sync(ops.transfer, t) is False
    assert balance(db, acct) == Balance(500, 0, 0)
    grants = db.read_sync(account_row, GRANTS)
    assert (grants.debits_posted, grants.credits_posted) == (500, 0)
    assert transfer_count(db) == 1
    assert_clean(db)


@pytest.mark.parametrize("change", ["amount", "credit", "debit"])
def test_transfer_replay_with_different_content_conflicts(db: Database, change: str) -> None:
    acct = db.write_sync(funded_account, 0)
    other = db.write_sync(funded_account, 0)
    db.write_sync(ops.transfer, Transfer("g", GRANTS, acct, 500, Code.GRANT))
    bad = {
        "amount": Transfer("g", GRANTS, acct, 501, Code.GRANT),
        "credit": Transfer("g", GRANTS, other, 500, Code.GRANT),
        "debit": Transfer("g", REVENUE, acct, 500, Code.GRANT),
    }[change]
    with pytest.raises(Conflict):
        db.write_sync(ops.transfer, bad)
    assert balance(db, acct) == Balance(500, 0, 0)
    assert balance(db, other) == Balance(0, 0, 0)
    assert_clean(db)


def test_transfer_that_would_overdraw_a_customer_writes_nothing(db: Database) -> None:
    acct = db.write_sync(funded_account, 100)
    r = hold(db, acct, 30, 30)
    assert r.held == 30
    with pytest.raises(InsufficientFunds):
        db.write_sync(ops.transfer, Transfer("refund-1", acct, REVENUE, 71, Code.ADJUST))
    assert db.read_sync(resolution_of, "refund-1") is None
    assert (
        db.read_sync(
            lambda c: c.execute(select(transfers).where(transfers.c.id == "refund-1")).first()
        )
        is None
    )
    assert balance(db, acct) == Balance(100, 0, 30)
    assert db.write_sync(ops.transfer, Transfer("refund-2", acct, REVENUE, 70, Code.ADJUST))
    assert balance(db, acct) == Balance(100, 70, 30)
    assert balance(db, acct).available == 0
    assert_clean(db)


def test_transfer_to_or_from_a_missing_account_writes_nothing(db: Database) -> None:
    acct = db.write_sync(funded_account, 100)
    with pytest.raises(NotFound):
        db.write_sync(ops.transfer, Transfer("t1", GRANTS, "ghost", 10, Code.GRANT))
    with pytest.raises(NotFound):
        db.write_sync(ops.transfer, Transfer("t2", "ghost", acct, 10, Code.GRANT))
    assert transfer_count(db) == 1
    assert balance(db, acct) == Balance(100, 0, 0)
    assert_clean(db)


@pytest.mark.parametrize("amount", [0, -5])
def test_transfer_amount_must_be_positive(db: Database, amount: int) -> None:
    acct = db.write_sync(funded_account, 100)
    with pytest.raises(ValueError):
        db.write_sync(ops.transfer, Transfer("z", acct, REVENUE, amount, Code.ADJUST))
    assert balance(db, acct) == Balance(100, 0, 0)


def test_system_accounts_may_go_below_zero(db: Database) -> None:
    acct = db.write_sync(funded_account, 10**12)
    grants = db.read_sync(account_row, GRANTS)
    assert grants.debits_posted == 10**12 and grants.credits_posted == 0
    assert balance(db, acct).available == 10**12
    assert_clean(db)


def test_api_key_from_the_key_store_is_held_against(db: Database) -> None:
    """The keys module's own insert (with a real KeyCipher) gives a row the ledger holds on."""
    from farebox.keys.secrets import KeyCipher
    from farebox.keys.store import insert_key

    acct = db.write_sync(funded_account, 1000)
    key, _raw = db.write_sync(insert_key, KeyCipher("s" * 32), acct, "k", 250, None, None)
    b = key.budget(T0)
    assert hold(db, acct, 300, 300, key=b).refusal is Refusal.KEY_LIMIT
    assert hold(db, acct, 300, 1, key=b).held == 250
    db.write_sync(
        lambda c: c.execute(update(api_keys).where(api_keys.c.id == key.id).values(revoked_at=T0))
    )
    assert hold(db, acct, 1, 1, key=b).refusal is Refusal.KEY_INVALID
    assert_clean(db)


@pytest.mark.parametrize("want", [0, -50])
def test_a_hold_of_nothing_or_less_changes_nothing(db: Database, want: int) -> None:
    acct = db.write_sync(funded_account, 100)
    res = hold(db, acct, want, min(want, 0))
    assert res.held == 0
    assert balance(db, acct) == Balance(100, 0, 0)
    assert transfer_count(db) == 1
    assert_clean(db)


def test_renew_holds_retimes_many_requests_and_records_usage(db: Database) -> None:
    acct = db.write_sync(funded_account, 1000)
    hold(db, acct, 100, 100, request_id="ra")
    hold(db, acct, 50, 50, request_id="ra", seq=1)
    hold(db, acct, 80, 80, request_id="rb")
    done = hold(db, acct, 10, 10, request_id="rc")
    settle(db, acct, "rc", [(done.transfer_id, 10)], 10)
    recovery = sweep.encode_recovery(QUERY)
    db.transact_sync(
        ops.renew_holds,
        [
            ops.Renewal("ra", TIMEOUT + 100, 120, recovery),
            ops.Renewal("rb", TIMEOUT + 100),
            ops.Renewal("rc", TIMEOUT + 100, 5, recovery),  # already settled: nothing to renew
            ops.Renewal("unknown", TIMEOUT + 100, 5, recovery),
        ],
    )
    db.transact_sync(ops.renew_holds, [])
    assert db.write_sync(sweep.sweep_expired, LATER) == 0
    assert db.write_sync(sweep.sweep_expired, TIMEOUT + 101) == 2
    a0, a1 = db.read_sync(resolution_of, "ra.0"), db.read_sync(resolution_of, "ra.1")
    b0 = db.read_sync(resolution_of, "rb.0")
    assert a0 is not None and a1 is not None and b0 is not None
    assert (a0["flags"], a0["amount"], a1["flags"], a1["amount"]) == (
        POST_PENDING,
        100,
        POST_PENDING,
        20,
    )
    assert (b0["flags"], b0["amount"]) == (VOID_PENDING, 80)
    assert balance(db, acct) == Balance(1000, 130, 0)
    assert db.read_sync(query_rows, "ra")[0]["query_source"] == "recovered"
    assert db.read_sync(query_rows, "rb") == []
    assert db.read_sync(query_rows, "rc")[0]["price"] == 10
    assert_clean(db)
