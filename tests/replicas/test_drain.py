"""SIGTERM drains a `farebox serve` process (net/drain.py): /readyz says 503 at once while the
process still serves; then new connections are refused while the streams in flight go on; a
stream that outlives FAREBOX_DRAIN_S is ended by the gateway with an error event, its usage and
[DONE], billed for what was delivered; nothing stays held; the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e_support import (
    IN_NANOS,
    OUT_NANOS,
    Ledger,
    Proc,
    chat_body,
    create_account,
    ledger_check,
    require_pg,
    serve_env,
    start_serve,
    stream_chat,
    write_catalog,
)
from support import NANOS, fresh_pg_database

NOTICE_S = 1.0
DRAIN_S = 4.0
MODELS = {
    "short-model": "tps=20,output_tokens=60",  # 3 s: ends while draining
    "long-model": "tps=20,output_tokens=400",  # 20 s: cut at the drain deadline
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'farebox.db'}"
        return
    require_pg()
    with fresh_pg_database() as url:
        yield url


async def _readyz(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as fresh:  # a new connection each time
        return await fresh.get(url + "/readyz")


def test_sigterm_announces_drains_cuts_and_settles_then_exits_zero(
    db_url: str, sim_proc: Proc, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path / "catalog.json", sim_proc.url, MODELS)
    env = serve_env(
        db_url,
        catalog,
        drain_s=DRAIN_S,
        drain_notice_s=NOTICE_S,
        stream_increment_tokens=16,
    )
    server = start_serve("drain", env)
    credit_id, key = create_account(server.url, "10")
    granted = 10 * NANOS

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            short = asyncio.create_task(
                stream_chat(client, server.url, key, chat_body("short-model", 1000))
            )
            long = asyncio.create_task(
                stream_chat(client, server.url, key, chat_body("long-model", 1000))
            )
            await asyncio.sleep(0.5)  # both streaming
            assert (await _readyz(server.url)).status_code == 200
            sent = time.monotonic()
            server.popen.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)

            # 1. The notice: not ready, yet still serving new connections.
            ready = await _readyz(server.url)
            assert ready.status_code == 503 and ready.json() == {"status": "draining"}
            async with httpx.AsyncClient(timeout=30) as fresh:
                during = await stream_chat(fresh, server.url, key, chat_body("race-model", 20))
            assert during.status == 200 and during.done and during.error is None

            # 2. The drain: new connections are refused; the streams in flight go on.
            await asyncio.sleep(max(0.0, NOTICE_S + 0.3 - (time.monotonic() - sent)))
            with pytest.raises(httpx.ConnectError):
                await _readyz(server.url)
            done = await short
            done.assert_finished(60)

            # 3. The cut: the long stream ends cleanly, billed for what it delivered.
            cut = await long
            cut.assert_cut_by_restart(IN_NANOS, OUT_NANOS, most=400)

            assert server.popen.wait(timeout=DRAIN_S + NOTICE_S + 15) == 0
            assert "Traceback" not in server.log(), server.log()

            ledger = Ledger(db_url)
            try:
                billed = {row[0]: row for row in ledger.queries(credit_id)}
                assert len(billed) == 3
                prices = sorted(int(row[4]) for row in billed.values())
                assert prices == sorted([done.cost, cut.cost, during.cost])
                credits, debits, pending = ledger.account(credit_id)
                assert pending == 0 and ledger.open_holds(credit_id) == []
                assert credits == granted and debits == sum(prices)
            finally:
                ledger.close()

    asyncio.run(scenario())
    check = ledger_check(env)
    assert check.returncode == 0, check.stdout + check.stderr
