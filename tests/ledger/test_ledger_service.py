"""The async ledger (`farebox.ledger.service.Ledger`) and its natural batching (`Batcher`), on
SQLite and PostgreSQL: 100 concurrent holds on an account affording 30 (exactly 30 succeed, in
shared transactions), group-committed settlements (`settle_later` + `flush`), a failing batch
failing only its own waiters, the async facade's other calls, and the background Sweeper."""

from __future__ import annotations

import asyncio
import time

import pytest
from ledger_support import account_row, audit, funded_account, open_hold_count, uid
from sqlalchemy import Connection, func, select, text

from farebox.db.database import Database
from farebox.db.schema import queries
from farebox.ledger.batcher import Batcher
from farebox.ledger.ops import Renewal
from farebox.ledger.service import Ledger, Sweeper
from farebox.ledger.sweep import encode_recovery
from farebox.ledger.types import (
    GRANTS,
    Balance,
    Code,
    HoldRequest,
    HoldResult,
    QueryRecord,
    Refusal,
    Settlement,
    SettleResult,
    Transfer,
)

AMOUNT = 7_000_001
QUERY = QueryRecord(model="m", input_count=10, output_count=20)


class CountingLedger(Ledger):
    """A Ledger that records how many holds and settlements each transaction carried."""

    def __init__(self, db: Database) -> None:
        self.hold_batches: list[int] = []
        self.settle_batches: list[int] = []
        super().__init__(db)

    async def _tick(self, items: list[HoldRequest | Settlement]) -> list[HoldResult | SettleResult]:
        holds = sum(isinstance(item, HoldRequest) for item in items)
        if holds:
            self.hold_batches.append(holds)
        if len(items) > holds:
            self.settle_batches.append(len(items) - holds)
        return await super()._tick(items)


def request(account_id: str, rid: str, want: int = AMOUNT, timeout_s: float = 60) -> HoldRequest:
    return HoldRequest(
        transfer_id=f"{rid}.0",
        request_id=rid,
        seq=0,
        account_id=account_id,
        want=want,
        minimum=want,
        timeout_at=time.time() + timeout_s,
    )


def assert_clean(db: Database) -> None:
    assert db.read_sync(audit) == []


async def test_hundred_concurrent_holds_on_an_account_affording_thirty(db: Database) -> None:
    acct = db.write_sync(funded_account, 30 * AMOUNT + AMOUNT - 1)
    ledger = CountingLedger(db)
    results = await asyncio.gather(*(ledger.hold(request(acct, f"c{i}")) for i in range(100)))
    ok = [r for r in results if r.ok]
    assert len(ok) == 30
    assert all(r.held == AMOUNT for r in ok)
    assert all(r.refusal is Refusal.FUNDS and r.held == 0 for r in results if not r.ok)
    assert [r.transfer_id for r in results] == [f"c{i}.0" for i in range(100)]
    # Natural batching: the 100 holds shared a few transactions instead of taking 100.
    assert sum(ledger.hold_batches) == 100
    assert len(ledger.hold_batches) < 100 and max(ledger.hold_batches) > 1
    bal = await ledger.balance(acct)
    assert bal == Balance(31 * AMOUNT - 1, 0, 30 * AMOUNT)
    assert bal.available == AMOUNT - 1

    # Group-committed settlements: each posts 1/3 of its hold and voids the rest.
    futures = [
        ledger.settle_later(
            Settlement(
                r.transfer_id[:-2], acct, None, ((r.transfer_id, r.held),), AMOUNT // 3, QUERY
            )
        )
        for r in ok
    ]
    await ledger.flush()
    assert all(f.done() for f in futures)
    settled = [f.result() for f in futures]
    assert all(s.posted == AMOUNT // 3 and s.lost == 0 for s in settled)
    assert sum(ledger.settle_batches) == 30
    assert len(ledger.settle_batches) < 30
    assert await ledger.balance(acct) == Balance(31 * AMOUNT - 1, 30 * (AMOUNT // 3), 0)
    n_queries = db.read_sync(
        lambda c: c.execute(select(func.count()).select_from(queries)).scalar_one()
    )
    assert n_queries == 30
    report = await ledger.check()
    assert report.ok, report.problems
    assert_clean(db)


async def test_settle_awaited_and_the_facade(db: Database) -> None:
    ledger = Ledger(db)
    acct = uid("svc-")
    await ledger.create_customer_account(acct)
    assert await ledger.transfer(Transfer("svc-grant", GRANTS, acct, 1000, Code.GRANT)) is True
    assert await ledger.transfer(Transfer("svc-grant", GRANTS, acct, 1000, Code.GRANT)) is False
    res = await ledger.hold(request(acct, "one", want=600))
    assert res.held == 600
    out = await ledger.settle(Settlement("one", acct, None, (("one.0", 600),), 250, QUERY))
    assert out.posted == 250
    assert await ledger.balance(acct) == Balance(1000, 250, 0)
    assert await ledger.balance("nobody") is None
    await ledger.flush()  # nothing queued: returns at once
    assert (await ledger.check()).ok


async def test_record_progress_and_sweep(db: Database) -> None:
    ledger = Ledger(db)
    acct = db.write_sync(funded_account, 1000)
    assert (await ledger.hold(request(acct, "dies", want=500, timeout_s=-1))).held == 500
    await ledger.record_progress("dies", 123, encode_recovery(QUERY), time.time() - 1)
    assert await ledger.sweep() == 1
    assert await ledger.sweep() == 0
    assert await ledger.balance(acct) == Balance(1000, 123, 0)
    assert (await ledger.check()).ok


async def test_a_failing_batch_fails_only_its_own_waiters(db: Database) -> None:
    ledger = Ledger(db)
    acct = db.write_sync(funded_account, 10 * AMOUNT)
    # Two holds with one transfer id in one batch: that transaction fails as a whole.
    first = ledger.hold(request(acct, "same"))
    second = ledger.hold(request(acct, "same"))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    assert db.read_sync(account_row, acct).debits_pending == 0
    # The batcher carries on with the next submissions.
    after = await asyncio.gather(*(ledger.hold(request(acct, f"ok{i}")) for i in range(3)))
    assert [r.held for r in after] == [AMOUNT] * 3
    assert db.read_sync(open_hold_count) == 3
    assert (await ledger.check()).ok


async def test_sweeper_resolves_expired_holds_in_the_background(db: Database) -> None:
    ledger = Ledger(db)
    acct = db.write_sync(funded_account, 1000)
    assert (await ledger.hold(request(acct, "gone", want=400, timeout_s=0.2))).held == 400
    sweeper = Sweeper(ledger, interval=0.05)
    sweeper.start()
    try:
        for _ in range(200):
            if db.read_sync(open_hold_count) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.stop()
    assert db.read_sync(open_hold_count) == 0
    assert await ledger.balance(acct) == Balance(1000, 0, 0)
    assert (await ledger.check()).ok


# ---------------------------------------------------------------------------------------------
# The Batcher on its own (no database)


async def test_batcher_keeps_order_and_respects_max_batch() -> None:
    sizes: list[int] = []

    async def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0.001)
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=8)
    out = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    assert out == [i * 10 for i in range(50)]
    assert sum(sizes) == 50 and max(sizes) <= 8 and len(sizes) < 50
    # One alone is written at once.
    sizes.clear()
    assert await batcher.submit(7) == 70
    assert sizes == [1]


async def test_batcher_flush_waits_for_everything_queued() -> None:
    done: list[int] = []

    async def run(items: list[int]) -> list[None]:
        await asyncio.sleep(0.01)
        done.extend(items)
        return [None] * len(items)

    batcher: Batcher[int, None] = Batcher(run, max_batch=4)
    futures = [batcher.submit_nowait(i) for i in range(10)]
    await batcher.flush()
    assert sorted(done) == list(range(10))
    assert all(f.done() for f in futures)


async def test_batcher_error_goes_to_that_batch_only() -> None:
    async def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("bad batch")
        return items

    batcher: Batcher[int, int] = Batcher(run)
    bad = await asyncio.gather(batcher.submit(13), batcher.submit(1), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in bad)
    assert await batcher.submit(2) == 2


@pytest.mark.parametrize("n", [1, 5])
async def test_batcher_cancelled_waiter_does_not_break_the_batch(n: int) -> None:
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        await gate.wait()
        return items

    batcher: Batcher[int, int] = Batcher(run)
    futures = [batcher.submit_nowait(i) for i in range(n)]
    futures[0].cancel()
    gate.set()
    await batcher.flush()
    assert futures[0].cancelled()
    assert [f.result() for f in futures[1:]] == list(range(1, n))


async def test_renew_keeps_a_live_request_from_the_sweeper(db: Database) -> None:
    ledger = Ledger(db)
    acct = db.write_sync(funded_account, 1000)
    assert (await ledger.hold(request(acct, "alive", want=300, timeout_s=-1))).held == 300
    await ledger.renew([Renewal("alive", time.time() + 60, 90, encode_recovery(QUERY))])
    assert await ledger.sweep() == 0
    out = await ledger.settle(Settlement("alive", acct, None, (("alive.0", 300),), 200, QUERY))
    assert out.posted == 200
    assert await ledger.balance(acct) == Balance(1000, 200, 0)
    assert (await ledger.check()).ok


async def test_a_sweep_reclaims_the_rows_of_resolved_holds(db: Database) -> None:
    """Every request adds and deletes `holds` rows; on PostgreSQL the sweep vacuums the table,
    so it does not keep every row it ever held where autovacuum is off (as on this machine) or
    behind. Checked by the table's pages: the heap of 2,000 deleted rows is cut back."""
    if db.is_sqlite:
        pytest.skip("SQLite reuses freed pages itself")
    ledger = Ledger(db)
    acct = db.write_sync(funded_account, 10**9)

    async def one(i: int) -> None:
        held = await ledger.hold(request(acct, f"vac-{i}", want=10))
        await ledger.settle(Settlement(f"vac-{i}", acct, None, ((held.transfer_id, 10),), 5, QUERY))

    for start in range(0, 2000, 100):
        await asyncio.gather(*(one(i) for i in range(start, start + 100)))

    def heap_pages(conn: Connection) -> int:
        return int(conn.execute(text("SELECT pg_relation_size('holds') / 8192")).scalar_one())

    before = db.read_sync(heap_pages)
    assert before > 5  # 2,000 dead rows
    await ledger.sweep()
    assert db.read_sync(heap_pages) < before  # VACUUM truncates the emptied pages at the end
    assert (await ledger.check()).ok
