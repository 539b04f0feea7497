"""The ledger's own cost per paid request: CPU and wall time of holds + settlements, in batches.

Runs the gateway's hot-path ledger transactions (`Ledger` hold batches, then settle batches,
like `farebox serve` does under load) against a fresh SQLite file and a fresh PostgreSQL
database, in one process, and prints µs per request. No HTTP, no upstream: only the database
work a paid request costs, so changes to the ledger's statements can be measured alone.

    python bench/ledger_ops.py                    # SQLite and PostgreSQL, batches of 1, 8, 32
    python bench/ledger_ops.py --batch 8 --requests 4000 --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import uvloop
from sqlalchemy import create_engine, text

from farebox.db.database import Database
from farebox.db.migrate import upgrade_to_head
from farebox.keys.secrets import KeyCipher
from farebox.keys.store import create_account_with_key
from farebox.ledger import ops
from farebox.ledger.service import Ledger
from farebox.ledger.types import HoldRequest, QueryRecord, Settlement, SettleResult, Transfer


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(db: Database, batch: int, requests: int) -> tuple[float, float]:
    ledger = Ledger(db)
    cipher = KeyCipher("bench")
    new = db.write_sync(create_account_with_key, cipher)
    account_id, key = new.account_id, new.key
    db.write_sync(ops.transfer, Transfer(uuid.uuid4().hex, "grants", account_id, 10**15, "grant"))
    budget = key.budget()
    query = QueryRecord(model="fake-gpt", input_count=12, output_count=20)
    prefix = uuid.uuid4().hex[:12]

    settling: list[asyncio.Future[SettleResult]] = []

    async def one(i: int) -> None:
        rid = f"{prefix}{i:08x}"
        held = await ledger.hold(
            HoldRequest(
                transfer_id=f"{rid}.0",
                request_id=rid,
                seq=0,
                account_id=account_id,
                want=50_000,
                minimum=1_000,
                timeout_at=time.time() + 60,
                key=budget,
            )
        )
        # Not awaited, as in the gateway: it rides with the next round's holds.
        settling.append(
            ledger.settle_later(
                Settlement(
                    request_id=rid,
                    account_id=account_id,
                    key_id=budget.key_id,
                    holds=((held.transfer_id, held.held),),
                    actual=31_000,
                    query=query,
                )
            )
        )

    cpu0, wall0 = _cpu(), time.perf_counter()
    for start in range(0, requests, batch):
        await asyncio.gather(*(one(i) for i in range(start, min(start + batch, requests))))
    await ledger.flush()
    await asyncio.gather(*settling)
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    report = await ledger.check()
    assert report.ok, report
    return cpu / requests * 1e6, wall / requests * 1e6


def _fresh(backend: str, pg_url: str, tmp: Path) -> tuple[Database, str | None]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / f'ledger-{uuid.uuid4().hex[:8]}.db'}"
        dropper = None
    else:
        name = f"farebox_ledger_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = pg_url.rsplit("/", 1)[0] + "/" + name
        dropper = name
    db = Database(url)
    upgrade_to_head(db.engine)
    return db, dropper


def _drop(pg_url: str, name: str) -> None:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--batch", default="1,8,32", help="concurrent requests per round")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("FAREBOX_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1/test"),
    )
    args = ap.parse_args()
    print("| backend | batch | CPU µs/request | wall µs/request |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            for batch in (int(b) for b in args.batch.split(",")):
                db, dropper = _fresh(backend, args.pg_url, Path(tmp))
                try:
                    cpu, wall = uvloop.run(_run(db, batch, args.requests))  # as the gateway
                finally:
                    db.close()
                    if dropper:
                        _drop(args.pg_url, dropper)
                print(f"| {backend} | {batch} | {cpu:,.0f} | {wall:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
