"""The last nanodollar cannot be spent twice across processes (SQLite and PostgreSQL).

Several spawned OS processes, each with its own `Database(url)`, race for holds on ONE account
that can afford only N of them (then against a key's usage limit): exactly N succeed in total,
the account never goes below zero, the key never over its limit, and `check_ledger` is ok.
Replicas replaying the same grant ids credit each exactly once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from ledger_support import (
    account_row,
    add_key,
    audit,
    funded_account,
    grant_worker,
    hold_worker,
    key_row,
    open_hold_count,
)

from farebox.db.database import Database
from farebox.ledger.check import check_ledger

PROCS = 3
ATTEMPTS = 25  # per process: 75 attempts in all for N = 40
N = 40
AMOUNT = 1_000_003  # an odd nanodollar count


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    """PROCS spawned OS processes (kept for the module) and a manager for a shared barrier."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(PROCS, mp_context=ctx) as pool:
        yield pool, manager


def run_processes(
    workers: tuple[ProcessPoolExecutor, Any],
    target: Callable[..., tuple[Any, ...]],
    args: list[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """Run target(*a, barrier) for each a, one per process, released together by the barrier."""
    pool, manager = workers
    assert len(args) == PROCS
    barrier = manager.Barrier(PROCS)
    futures = [pool.submit(target, *a, barrier) for a in args]
    reports = [f.result(timeout=180) for f in futures]
    assert len({r[-1] for r in reports}) == PROCS  # three distinct OS processes
    return reports


def assert_clean(db: Database) -> None:
    report = db.read_sync(check_ledger)
    assert report.ok, report.problems
    assert db.read_sync(audit) == []


def test_processes_never_overspend_one_account(db: Database, ledger_url: str, workers: Any) -> None:
    # Enough for N holds and one nanodollar short of the next.
    acct = db.write_sync(funded_account, N * AMOUNT + AMOUNT - 1)
    reports = run_processes(
        workers,
        hold_worker,
        [(ledger_url, acct, None, AMOUNT, ATTEMPTS, f"p{i}") for i in range(PROCS)],
    )
    for _tag, _held, _refused, problems, _pid in reports:
        assert problems == []
    assert sum(r[1] for r in reports) == N
    assert sum(r[2] for r in reports) == PROCS * ATTEMPTS - N
    row = db.read_sync(account_row, acct)
    assert row.debits_pending == N * AMOUNT and row.debits_posted == 0
    assert row.credits_posted - row.debits_pending == AMOUNT - 1
    assert db.read_sync(open_hold_count) == N
    assert_clean(db)


def test_processes_never_overspend_a_key_limit(db: Database, ledger_url: str, workers: Any) -> None:
    acct = db.write_sync(funded_account, 10**15)  # the account is not the limit here
    key_id = db.write_sync(add_key, acct, N * AMOUNT + AMOUNT - 1)
    reports = run_processes(
        workers,
        hold_worker,
        [(ledger_url, acct, key_id, AMOUNT, ATTEMPTS, f"k{i}") for i in range(PROCS)],
    )
    for _tag, _held, _refused, problems, _pid in reports:
        assert problems == []
    assert sum(r[1] for r in reports) == N
    k = db.read_sync(key_row, key_id)
    assert (k.period_pending, k.period_posted) == (N * AMOUNT, 0)
    assert db.read_sync(account_row, acct).debits_pending == N * AMOUNT
    assert_clean(db)


def test_replicas_replaying_grants_credit_each_once(
    db: Database, ledger_url: str, workers: Any
) -> None:
    acct = db.write_sync(funded_account, 0)
    ids = [f"invoice-{i}" for i in range(15)]
    reports = run_processes(
        workers, grant_worker, [(ledger_url, acct, ids, 7, f"g{i}") for i in range(PROCS)]
    )
    for _tag, _applied, _, problems, _pid in reports:
        assert problems == []
    assert sum(r[1] for r in reports) == len(ids)
    assert db.read_sync(account_row, acct).credits_posted == 7 * len(ids)
    assert_clean(db)
