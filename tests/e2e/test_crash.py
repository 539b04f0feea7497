"""Streams that end badly: the gateway is killed with SIGKILL mid-stream, or the client hangs up
mid-stream. Real processes, on PostgreSQL and on SQLite.

The money rules checked (DESIGN §3): a dead process's hold is resolved by the sweeper of the
next process, posting at most what was recorded as delivered; a client that goes away pays for
its input and the output it was sent; nothing is ever created or lost (balance + Σ history =
granted) and `farebox ledger check` passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from e2e_support import (
    IN_NANOS,
    INCREMENT_TOKENS,
    OUT_NANOS,
    Cluster,
    Ledger,
    StreamResult,
    chat_body,
    create_account,
    ledger_check,
    require_pg,
    serve_env,
    start_serve,
    stream_chat,
)
from support import NANOS, fresh_pg_database

HOLD_TIMEOUT_S = 3
KILL_AFTER_TOKENS = 40


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'farebox.db'}"
        return
    require_pg()
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    led = Ledger(db_url)
    try:
        yield led
    finally:
        led.close()


def assert_books_close(ledger: Ledger, env: dict[str, str], credit_id: str, granted: int) -> int:
    """Nothing reserved, nothing lost: balance + Σ history == granted. Returns Σ history."""
    credits, debits, pending = ledger.account(credit_id)
    assert (credits, pending) == (granted, 0)
    spent = sum(int(r.price) for r in ledger.queries(credit_id))
    assert spent == debits
    assert (credits - debits) + spent == granted
    check = ledger_check(env)
    assert check.returncode == 0, check.stdout + check.stderr
    return spent


def test_kill9_mid_stream_hold_is_recovered(
    db_url: str, ledger: Ledger, catalog_file: Path
) -> None:
    env = serve_env(
        db_url,
        catalog_file,
        hold_timeout_s=HOLD_TIMEOUT_S,
        sweep_interval_s=0.5,
        stream_increment_tokens=16,
    )
    first = start_serve("serve-1", env)
    credit_id, key = create_account(first.url, "10")
    granted = 10 * NANOS

    async def stream_until_killed() -> tuple[StreamResult, int]:
        res = StreamResult()
        tokens_at_kill = -1
        body = chat_body("slow-model", 400)  # 20 tokens/s for 20 s
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream(
                "POST", first.url + "/v1/chat/completions", json=body, headers=headers
            ) as r,
        ):
            res.status = r.status_code
            assert r.status_code == 200, await r.aread()
            try:
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        res.feed(line[6:])
                    if tokens_at_kill < 0 and res.tokens >= KILL_AFTER_TOKENS:
                        first.kill9()
                        tokens_at_kill = res.tokens
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                res.broken = repr(exc)  # what the dead process had written has been read
        return res, tokens_at_kill

    res, tokens_at_kill = asyncio.run(stream_until_killed())
    assert tokens_at_kill >= KILL_AFTER_TOKENS
    assert not res.done and res.usage is None and res.broken, res
    delivered = res.tokens  # everything the client got, including bytes in flight at the kill

    # The dead process left its hold behind: reserved, nothing posted yet.
    credits, debits, pending = ledger.account(credit_id)
    holds = ledger.open_holds(credit_id)
    assert (credits, debits) == (granted, 0)
    assert pending > 0 and holds, "the hold should outlive the process"
    assert pending == sum(int(h.amount) for h in holds)
    recorded = max(int(h.recorded) for h in holds)
    assert recorded > 0, "an extension should have recorded the usage delivered so far"

    # A new process on the same database sweeps it once it times out.
    killed_at = time.monotonic()
    second = start_serve("serve-2", env)
    up_after = time.monotonic() - killed_at
    swept_after = up_after + ledger.wait_reserved_zero(credit_id, timeout=HOLD_TIMEOUT_S + 10)

    rows = ledger.queries(credit_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row.query_source == "recovered"
    assert (
        int(row.price)
        == recorded
        == int(row.input_count) * IN_NANOS + int(row.output_count) * OUT_NANOS
    )
    # Charged no more than was delivered (the recorded usage lags it by at most one increment).
    assert 0 < int(row.output_count) <= delivered
    spent = assert_books_close(ledger, env, credit_id, granted)
    r = httpx.post(second.url + "/credits/balance", json={"credit_id": credit_id}, timeout=30)
    assert r.status_code == 200
    assert r.json()["reserved"] == 0
    assert round(r.json()["balance"] * NANOS) == granted - spent
    print(
        f"\nkill -9 ({db_url.split(':')[0]}): client got {delivered} tokens "
        f"({tokens_at_kill} when the kill was sent); hold of ${pending / NANOS}; restarted "
        f"{up_after:.1f}s and swept {swept_after:.1f}s after the kill; recovered charge "
        f"${spent / NANOS} "
        f"= {row.input_count} in + {row.output_count} out tokens"
    )


@dataclass
class Steady:
    """A running gateway with default hold timeouts, its environment and its database."""

    url: str
    env: dict[str, str]
    ledger: Ledger
    kind: str


@pytest.fixture(params=["postgresql", "sqlite"])
def steady(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Steady]:
    """PostgreSQL: the shared two-server cluster; SQLite: a gateway of its own."""
    if request.param == "postgresql":
        cluster: Cluster = request.getfixturevalue("cluster")
        yield Steady(cluster.urls[1], cluster.env, cluster.ledger, "postgresql")
        return
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    catalog: Path = request.getfixturevalue("catalog_file")
    env = serve_env(url, catalog, stream_increment_tokens=INCREMENT_TOKENS)
    server = start_serve("serve", env)
    led = Ledger(url)
    try:
        yield Steady(server.url, env, led, "sqlite")
    finally:
        led.close()


def test_client_disconnect_pays_for_what_was_sent(steady: Steady) -> None:
    server, ledger, env = steady, steady.ledger, steady.env
    credit_id, key = create_account(server.url, "10")
    granted = 10 * NANOS
    stop_after = 25  # past two hold extensions (at 8 and 16 tokens)

    async def hang_up() -> StreamResult:
        async with httpx.AsyncClient(timeout=30) as client:
            body = chat_body("crawl-model", 400)  # 10 tokens/s for 40 s
            return await stream_chat(client, server.url, key, body, stop_after_tokens=stop_after)

    started = time.monotonic()
    res = asyncio.run(hang_up())
    assert res.status == 200 and res.tokens >= stop_after and not res.done, res
    settled_after = ledger.wait_reserved_zero(credit_id, timeout=10)
    elapsed = time.monotonic() - started
    assert elapsed < 15, "the upstream stream (40 s) should have been cancelled"

    rows = ledger.queries(credit_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row.query_source == "api"
    # The rule: charged for the input plus every output token the client read, and at most the
    # one chunk that was in flight when it hung up (sent by the gateway, not read).
    in_flight = max(res.max_chunk_tokens, 1)
    assert res.tokens <= int(row.output_count) <= res.tokens + in_flight, (res.tokens, row)
    assert int(row.price) == int(row.input_count) * IN_NANOS + int(row.output_count) * OUT_NANOS
    spent = assert_books_close(ledger, env, credit_id, granted)
    print(
        f"\ndisconnect ({steady.kind}): client read {res.tokens} tokens, charged "
        f"{row.input_count} in + {row.output_count} out = ${spent / NANOS}; "
        f"settled {settled_after:.2f}s after hang-up"
    )
