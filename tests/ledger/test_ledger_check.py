"""`check_ledger` and `farebox ledger check` find corruption, on SQLite and PostgreSQL.

A busy but clean ledger (grants, settled and open holds with a key budget, a swept request with
recovered usage, a direct debit) checks clean; then one row is tampered with (an account balance,
a deleted transfer, a resolution duplicated, a customer made negative, a post above its hold, key
counters, history prices) and the report names what broke. The CLI exits 0 on the clean ledger
and 1, naming the broken invariant, on a corrupted one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from ledger_support import T0, add_key, budget, funded_account, uid
from sqlalchemy import Connection, delete, insert, select, text, update

from farebox.db.database import Database
from farebox.db.schema import accounts, api_keys, holds, queries, transfers
from farebox.ledger import ops, sweep, tick
from farebox.ledger.check import check_ledger
from farebox.ledger.types import (
    REVENUE,
    VOID_PENDING,
    Code,
    HoldRequest,
    QueryRecord,
    Settlement,
    Transfer,
)

QUERY = QueryRecord(model="m", input_count=1, output_count=1)


@dataclass(frozen=True)
class Busy:
    acct: str
    other: str
    key_id: str
    settled: str  # a pending transfer that was posted (120 of 300)
    open_hold: str  # a pending transfer still open (200, on the key)
    swept: str  # a pending transfer the sweeper posted (40 of 100)
    grant: str


def _hold(conn: Connection, rid: str, seq: int, acct: str, amount: int, **kw: object) -> str:
    req = HoldRequest(f"{rid}.{seq}", rid, seq, acct, amount, amount, T0 + 60, **kw)  # type: ignore[arg-type]
    (res,) = tick.hold_batch(conn, [req], T0)
    assert res.held == amount
    return res.transfer_id


def busy_ledger(conn: Connection) -> Busy:
    acct = funded_account(conn, 1000)
    grant_id = conn.execute(
        select(transfers.c.id).where(transfers.c.credit_account_id == acct)
    ).scalar_one()
    other = funded_account(conn, 50)
    ops.transfer(conn, Transfer(uid("adj-"), other, REVENUE, 10, Code.ADJUST), T0)
    key_id = add_key(conn, acct, 800)
    settled = _hold(conn, "r1", 0, acct, 300, key=budget(key_id))
    tick.settle_batch(conn, [Settlement("r1", acct, key_id, ((settled, 300),), 120, QUERY)], T0 + 1)
    open_hold = _hold(conn, "r2", 0, acct, 200, key=budget(key_id))
    swept = _hold(conn, "r3", 0, acct, 100)
    ops.record_progress(conn, "r3", 40, sweep.encode_recovery(QUERY), T0 + 30)
    assert sweep.sweep_expired(conn, T0 + 31) == 1
    return Busy(acct, other, key_id, settled, open_hold, swept, grant_id)


@pytest.fixture
def busy(db: Database) -> Busy:
    b = db.write_sync(busy_ledger)
    report = db.read_sync(check_ledger)
    assert report.ok, report.problems
    assert report.transfers == 8 and report.accounts == 5
    return b


def tamper(db: Database, fn: Callable[[Connection, Busy], object], b: Busy) -> list[str]:
    db.write_sync(fn, b)
    report = db.read_sync(check_ledger)
    assert not report.ok
    return report.problems


def has(problems: list[str], *words: str) -> bool:
    return any(all(w in p for w in words) for p in problems)


def test_tampered_balance_is_named(db: Database, busy: Busy) -> None:
    problems = tamper(
        db,
        lambda c, b: c.execute(
            update(accounts)
            .where(accounts.c.id == b.acct)
            .values(credits_posted=accounts.c.credits_posted + 1)
        ),
        busy,
    )
    assert has(problems, f"account {busy.acct}", "differ from the sum of its transfers")
    assert has(problems, "sum of debits posted", "credits posted")


def test_tampered_pending_balance_is_named(db: Database, busy: Busy) -> None:
    problems = tamper(
        db,
        lambda c, b: c.execute(
            update(accounts)
            .where(accounts.c.id == REVENUE)
            .values(credits_pending=accounts.c.credits_pending - 1)
        ),
        busy,
    )
    assert has(problems, f"account {REVENUE}", "differ from the sum of its transfers")
    assert has(problems, "sum of debits pending", "credits pending")


def test_deleted_transfer_is_found(db: Database, busy: Busy) -> None:
    problems = tamper(
        db, lambda c, b: c.execute(delete(transfers).where(transfers.c.id == b.grant)), busy
    )
    assert has(problems, f"account {busy.acct}", "differ from the sum of its transfers")
    assert has(problems, "account grants", "differ from the sum of its transfers")


def test_deleted_pending_transfer_of_an_open_hold_is_found(db: Database, busy: Busy) -> None:
    problems = tamper(
        db, lambda c, b: c.execute(delete(transfers).where(transfers.c.id == b.open_hold)), busy
    )
    assert has(problems, f"open hold {busy.open_hold} has no pending transfer")


def test_deleted_resolution_is_found(db: Database, busy: Busy) -> None:
    problems = tamper(
        db,
        lambda c, b: c.execute(delete(transfers).where(transfers.c.pending_id == b.settled)),
        busy,
    )
    assert has(problems, f"pending transfer {busy.settled} is resolved 0 times", "is not open")


def test_resolved_hold_made_open_again_is_found(db: Database, busy: Busy) -> None:
    """A hold both resolved and still open would be resolved a second time by its settle."""

    def reopen(c: Connection, b: Busy) -> None:
        c.execute(
            insert(holds).values(
                transfer_id=b.settled,
                request_id="r1",
                seq=0,
                account_id=b.acct,
                credit_account_id=REVENUE,
                key_id=b.key_id,
                amount=300,
                expires_at=T0 + 60,
                recorded=0,
                recovery=None,
            )
        )

    problems = tamper(db, reopen, busy)
    assert has(problems, f"pending transfer {busy.settled} is resolved 1 times and is open")


def test_duplicated_resolution_is_found(db: Database, busy: Busy) -> None:
    """Two resolutions of one pending transfer (the schema's unique pending_id is what prevents
    it; drop it, as a careless migration might, and the check still catches the double)."""
    if db.is_sqlite:
        pytest.skip("SQLite cannot drop the unique constraint on transfers.pending_id")

    def duplicate(c: Connection, b: Busy) -> None:
        name = c.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'transfers'::regclass "
                "AND contype = 'u'"
            )
        ).scalar_one()
        c.execute(text(f'ALTER TABLE transfers DROP CONSTRAINT "{name}"'))
        c.execute(
            insert(transfers).values(
                id=b.settled + ".again",
                debit_account_id=b.acct,
                credit_account_id=REVENUE,
                amount=300,
                pending_id=b.settled,
                timeout_at=None,
                code="query",
                flags=VOID_PENDING,
                key_id=b.key_id,
                ref="r1",
                created_at=T0,
            )
        )

    try:
        problems = tamper(db, duplicate, busy)
        assert has(problems, f"pending transfer {busy.settled} is resolved 2 times")
    finally:
        db.write_sync(lambda c: c.execute(delete(transfers)))
        db.write_sync(
            lambda c: c.execute(
                text(
                    "ALTER TABLE transfers ADD CONSTRAINT transfers_pending_id_key UNIQUE (pending_id)"
                )
            )
        )


def test_customer_below_zero_is_named(db: Database, busy: Busy) -> None:
    """A debit written with its balances (so every sum agrees) but past what the customer had."""

    def overdraw(c: Connection, b: Busy) -> None:
        c.execute(
            insert(transfers).values(
                id="overdraft",
                debit_account_id=b.other,
                credit_account_id=REVENUE,
                amount=1000,
                pending_id=None,
                timeout_at=None,
                code="adjust",
                flags=0,
                key_id=None,
                ref=None,
                created_at=T0,
            )
        )
        for account_id, column in ((b.other, "debits_posted"), (REVENUE, "credits_posted")):
            c.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values({column: accounts.c[column] + 1000})
            )

    problems = tamper(db, overdraw, busy)
    assert has(problems, f"account {busy.other}", "below zero")
    assert len(problems) == 1, problems


def test_post_above_its_hold_is_found(db: Database, busy: Busy) -> None:
    """A post may take less than was held, never more (even with every balance agreeing)."""

    def inflate(c: Connection, b: Busy) -> None:
        c.execute(update(transfers).where(transfers.c.pending_id == b.settled).values(amount=301))
        for account_id, column in ((b.acct, "debits_posted"), (REVENUE, "credits_posted")):
            c.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values({column: accounts.c[column] + 181})
            )
        c.execute(
            update(api_keys)
            .where(api_keys.c.id == b.key_id)
            .values(total_posted=api_keys.c.total_posted + 181)
        )
        c.execute(update(queries).where(queries.c.request_id == "r1").values(price=301))

    problems = tamper(db, inflate, busy)
    assert has(problems, busy.settled, "more than")


def test_resolution_between_other_accounts_is_found(db: Database, busy: Busy) -> None:
    def redirect(c: Connection, b: Busy) -> None:
        c.execute(
            update(transfers)
            .where(transfers.c.pending_id == b.swept)
            .values(debit_account_id=b.other)
        )
        for account_id, delta in ((b.acct, -40), (b.other, 40)):
            c.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(debits_posted=accounts.c.debits_posted + delta)
            )
        c.execute(update(queries).where(queries.c.request_id == "r3").values(account_id=b.other))

    problems = tamper(db, redirect, busy)
    assert has(problems, busy.swept, "between other accounts")


def test_key_counters_are_checked(db: Database, busy: Busy) -> None:
    problems = tamper(
        db,
        lambda c, b: c.execute(
            update(api_keys)
            .where(api_keys.c.id == b.key_id)
            .values(period_pending=0, total_posted=api_keys.c.total_posted + 5)
        ),
        busy,
    )
    assert has(problems, f"key {busy.key_id} reserved 0 differs from its open holds 200")
    assert has(problems, f"key {busy.key_id} total usage 125 differs from its posted transfers 120")


def test_history_price_is_checked(db: Database, busy: Busy) -> None:
    problems = tamper(
        db,
        lambda c, b: c.execute(
            update(queries).where(queries.c.request_id == "r3").values(price=41)
        ),
        busy,
    )
    assert has(problems, f"account {busy.acct}: query history totals 161", "posted 160")


def test_transfer_naming_a_missing_account_is_found(db: Database, busy: Busy) -> None:
    problems = tamper(
        db, lambda c, b: c.execute(delete(accounts).where(accounts.c.id == b.other)), busy
    )
    assert has(problems, f"transfers name account {busy.other}, which does not exist")


def test_open_hold_amount_differing_from_its_transfer_is_found(db: Database, busy: Busy) -> None:
    problems = tamper(
        db,
        lambda c, b: c.execute(
            update(holds).where(holds.c.transfer_id == b.open_hold).values(amount=199)
        ),
        busy,
    )
    assert has(problems, f"hold {busy.open_hold} amount differs from its pending transfer")


# ---------------------------------------------------------------------------------------------
# The CLI


def run_cli(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env["FAREBOX_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "farebox", "ledger", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # runs `farebox ledger check` as a process
def test_cli_ledger_check(db: Database, busy: Busy, ledger_url: str) -> None:
    clean = run_cli(ledger_url)
    assert clean.returncode == 0, clean.stderr
    assert "ledger ok: 5 accounts, 8 transfers" in clean.stdout
    assert "BROKEN" not in clean.stderr
    db.write_sync(
        lambda c: c.execute(
            update(accounts)
            .where(accounts.c.id == busy.other)
            .values(debits_posted=accounts.c.debits_posted + 7)
        )
    )
    broken = run_cli(ledger_url)
    assert broken.returncode == 1
    lines = [line for line in broken.stderr.splitlines() if line.startswith("BROKEN: ")]
    assert any(f"account {busy.other}" in line and "sum of its transfers" in line for line in lines)
    assert any("sum of debits posted" in line for line in lines)
    assert "ledger ok" not in broken.stdout
