"""The session layer the ledger's hot path runs on: one coroutine, a synchronous driver (SQLite,
and PostgreSQL for sync callers) and psycopg's async driver on the event loop (PostgreSQL)."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import psycopg
import pytest
from ledger_support import T0, funded_account, uid
from sqlalchemy import select

from farebox.db.compiled import CompiledStatement, fail_unless
from farebox.db.database import Database
from farebox.db.schema import accounts, holds, queries
from farebox.db.session import CheckFailed, Session, run_sync
from farebox.ledger import statements as sql


async def _suspends() -> int:
    await asyncio.sleep(0)
    return 1


def test_run_sync_refuses_a_coroutine_that_suspends() -> None:
    with pytest.raises(RuntimeError, match="tried to suspend"):
        run_sync(_suspends())


async def _debit(session: Session, account_id: str, amount: int) -> int:
    return await session.rowcount(sql.DEBIT_PENDING, {"p_account": account_id, "p_amount": amount})


async def _debit_then_fail(session: Session, account_id: str, amount: int) -> None:
    await _debit(session, account_id, amount)
    raise ValueError("after the debit")


def _pending(db: Database, account_id: str) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                select(accounts.c.debits_pending).where(accounts.c.id == account_id)
            ).scalar_one()
        )


async def test_transact_commits_and_rolls_back_on_error(db: Database) -> None:
    account_id = db.write_sync(funded_account, 1_000)
    assert await db.transact(_debit, account_id, 600) == 1
    assert await db.transact(_debit, account_id, 600) == 0  # only 400 left
    with pytest.raises(ValueError, match="after the debit"):
        await db.transact(_debit_then_fail, account_id, 100)
    assert _pending(db, account_id) == 600


async def test_transact_retries_a_deadlock(db: Database) -> None:
    account_id = db.write_sync(funded_account, 1_000)
    attempts: list[int] = []

    async def deadlocks_once(session: Session) -> int:
        attempts.append(1)
        done = await _debit(session, account_id, 100)
        if len(attempts) == 1:  # as the driver raises it; the debit above rolls back
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return done

    assert await db.transact(deadlocks_once) == 1
    assert len(attempts) == 2
    assert _pending(db, account_id) == 100


async def test_a_broken_connection_is_dropped_and_the_next_transaction_works(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("no server connection to lose")
    account_id = db.write_sync(funded_account, 1_000)

    async def loses_its_connection(session: Session) -> None:
        rows = await session.fetchall(
            await session._send("SELECT pg_terminate_backend(pg_backend_pid())", None)
        )
        assert rows  # not reached: the server ends the connection

    with pytest.raises(psycopg.OperationalError):
        await db.transact(loses_its_connection)
    assert await db.transact(_debit, account_id, 300) == 1
    assert _pending(db, account_id) == 300


async def _send_debit(session: Session, account_id: str, amount: int) -> None:
    await session.execute(sql.DEBIT_PENDING, {"p_account": account_id, "p_amount": amount})


def _postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("checks on the server are PostgreSQL's (a tick goes step by step on SQLite)")


CHECK = CompiledStatement({"postgresql": f"SELECT {fail_unless('%(ok)s')}"})


async def _debits_at_once(session: Session, account_id: str, ok: bool, fail: bool) -> str:
    """Two debits and a check sent without waiting for any answer, then one sync."""
    await _send_debit(session, account_id, 100)
    if session.pipelined:
        await session.execute(CHECK, {"ok": ok})
    await _send_debit(session, account_id, 200)
    if fail:
        raise ValueError("before the sync")
    await session.sync()
    return "done"


async def test_at_once_commits_every_statement_at_its_one_sync(db: Database) -> None:
    account_id = db.write_sync(funded_account, 1_000)
    assert await db.transact(_debits_at_once, account_id, True, False, at_once=True) == "done"
    assert _pending(db, account_id) == 300


async def test_at_once_a_failed_check_voids_every_statement(db: Database) -> None:
    _postgres_only(db)
    account_id = db.write_sync(funded_account, 1_000)
    for _ in range(3):  # the connection recovers and is used again
        with pytest.raises(CheckFailed):
            await db.transact(_debits_at_once, account_id, False, False, at_once=True)
        assert _pending(db, account_id) == 0
    assert await db.transact(_debits_at_once, account_id, True, False, at_once=True) == "done"
    assert _pending(db, account_id) == 300


async def test_at_once_an_error_before_the_sync_commits_nothing(db: Database) -> None:
    """The statements sent so far would commit at the next sync: none may come."""
    account_id = db.write_sync(funded_account, 1_000)
    with pytest.raises(ValueError, match="before the sync"):
        await db.transact(_debits_at_once, account_id, True, True, at_once=True)
    assert await db.transact(_debit, account_id, 50) == 1
    assert _pending(db, account_id) == 50


async def test_a_failed_check_in_a_transaction_leaves_it_usable(db: Database) -> None:
    """Under a savepoint, as `tick` tries the common case on a synchronous session."""
    _postgres_only(db)
    account_id = db.write_sync(funded_account, 1_000)

    async def check_then_debit(session: Session) -> int:
        await session.execute(sql.SAVEPOINT, {})
        await _send_debit(session, account_id, 100)
        with pytest.raises(CheckFailed):
            await session.execute(CHECK, {"ok": False})
            await session.sync()
        await session.recover()
        await session.execute(sql.ROLLBACK_TO_SAVEPOINT, {})
        return await _debit(session, account_id, 7)

    assert db.transact_sync(check_then_debit) == 1
    assert await db.transact(check_then_debit) == 1
    assert _pending(db, account_id) == 14


def test_transact_from_several_event_loops(db: Database) -> None:
    """A connection belongs to the loop that opened it: each loop gets its own."""
    account_id = db.write_sync(funded_account, 1_000)
    for _ in range(3):
        assert asyncio.run(db.transact(_debit, account_id, 100)) == 1
    assert _pending(db, account_id) == 300


ROW_VALUES: list[dict[str, Any]] = [
    {
        "transfer_id": uid("t."),
        "request_id": 'r-"quoted" \\ back\nslash ✓',
        "seq": 0,
        "account_id": "acct",
        "credit_account_id": "revenue",
        "key_id": None,
        "amount": (1 << 62) + 7,
        "expires_at": T0 + 0.123456789012,
        "recorded": 0,
        "recovery": '{"model": "m", "text": "ünïcödé \\u0000"}',
    },
    {
        "transfer_id": uid("t."),
        "request_id": "plain",
        "seq": 3,
        "account_id": "acct",
        "credit_account_id": "revenue",
        "key_id": "k1",
        "amount": 1,
        "expires_at": math.pi * 1e9,
        "recorded": 5,
        "recovery": None,
    },
]


async def _insert_holds(session: Session, rows: list[dict[str, Any]]) -> None:
    await session.executemany(sql.INSERT_HOLDS, rows)


async def test_bulk_insert_keeps_every_value_exact(db: Database) -> None:
    """PostgreSQL gets many rows as one JSON text: floats, big integers, NULLs and odd text must
    come back exactly as they went in, as SQLite's row-by-row insert keeps them."""
    await db.transact(_insert_holds, ROW_VALUES)
    with db.engine.connect() as conn:
        got = {
            row.transfer_id: dict(row._mapping)
            for row in conn.execute(
                select(holds).where(holds.c.transfer_id.in_([r["transfer_id"] for r in ROW_VALUES]))
            )
        }
    for row in ROW_VALUES:
        assert got[row["transfer_id"]] == row


async def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    await session.executemany(sql.UPSERT_QUERIES, rows)


async def test_bulk_upsert_adds_prices_and_keeps_booleans(db: Database) -> None:
    rid = uid("q.")
    row = {
        "request_id": rid,
        "account_id": "acct",
        "key_id": None,
        "created_at": T0 + 0.5,
        "model": "m",
        "input_count": 10,
        "output_count": 20,
        "price": 300,
        "query_type": "chat",
        "query_source": "api",
        "is_online": True,
        "is_free_model": False,
        "attestation": None,
        "reconcile": None,
    }
    await db.transact(_upsert, [row])
    await db.transact(_upsert, [{**row, "price": 50, "output_count": 25}])
    with db.engine.connect() as conn:
        got = conn.execute(select(queries).where(queries.c.request_id == rid)).one()._mapping
    assert (got["price"], got["output_count"], got["is_online"], got["is_free_model"]) == (
        350,
        25,
        True,
        False,
    )
    assert got["created_at"] == T0 + 0.5


async def _synchronous_commit(session: Session) -> str:
    rows = await session.fetchall(await session._send("SHOW synchronous_commit", None))
    return str(rows[0][0])


@pytest.mark.parametrize("async_commit", [True, False])
async def test_async_commit_is_the_ledger_transactions_only(
    ledger_url: str, async_commit: bool
) -> None:
    """The hot path's transactions may skip the wait for the disk; `write` never does."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's setting (SQLite's WAL commits never wait for the disk)")
    db = Database(ledger_url, threads=1, async_commit=async_commit)
    try:
        assert await db.transact(_synchronous_commit) == ("off" if async_commit else "on")
        assert db.transact_sync(_synchronous_commit) == "on"  # the engine's connections
    finally:
        db.close()


# Thirty statements of distinct text, so that psycopg prepares them at different moments.
SHAPES = [
    CompiledStatement(
        {
            "postgresql": "UPDATE accounts SET debits_pending = debits_pending + %(p_amount)s "
            f"WHERE id = %(p_account)s AND {k} = {k}"
        }
    )
    for k in range(30)
]


async def _random_batch(session: Session, account_id: str, rng: random.Random, fail: bool) -> int:
    """A few debits, a check that may fail, a few more: one at-once batch."""
    sent = 0
    for _ in range(rng.randint(0, 3)):
        await session.send(rng.choice(SHAPES), {"p_account": account_id, "p_amount": 1})
        sent += 1
    await session.send(CHECK, {"ok": not fail})
    for _ in range(rng.randint(0, 2)):
        await session.send(rng.choice(SHAPES), {"p_account": account_id, "p_amount": 1})
        sent += 1
    await session.sync()
    return sent


async def test_failed_batches_do_not_corrupt_psycopgs_prepared_statements(db: Database) -> None:
    """psycopg prepares a statement on its 5th run; a batch that fails after (or before) such
    a prepare once left it believing in a statement the server did not have."""
    _postgres_only(db)
    account_id = db.write_sync(funded_account, 1_000_000)
    rng = random.Random(7)
    expected = 0
    for _ in range(400):
        fail = rng.random() < 0.3
        try:
            expected += await db.transact(_random_batch, account_id, rng, fail, at_once=True)
        except CheckFailed:
            assert fail
    assert _pending(db, account_id) == expected
