"""Requests that outlive their hold's timeout while perfectly healthy.

A hold carries a timeout so that the holds of a dead process are swept (see test_crash.py). A
live request must keep its holds from timing out, or the sweeper resolves them under it. These
tests run one gateway with a 1 s hold timeout (sweeping every 0.2 s) and upstreams slower than
that, and check that each request is still charged exactly once, exactly what its client was
shown (the lease keeper renews live requests' holds every third of the timeout).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from e2e_support import (
    Ledger,
    StreamResult,
    chat_body,
    create_account,
    ledger_check,
    require_pg,
    serve_env,
    start_serve,
    stream_chat,
    usd_nanos,
)
from support import NANOS, fresh_pg_database


@dataclass
class ShortHold:
    url: str
    env: dict[str, str]
    ledger: Ledger


@pytest.fixture(scope="module")
def short_hold(catalog_file: Path) -> Iterator[ShortHold]:
    require_pg()
    with fresh_pg_database() as url:
        env = serve_env(
            url, catalog_file, hold_timeout_s=1, sweep_interval_s=0.2, stream_increment_tokens=16
        )
        server = start_serve("serve-short-hold", env)
        server.shared = True
        ledger = Ledger(url)
        try:
            yield ShortHold(server.url, env, ledger)
        finally:
            server.stop()
            ledger.close()


def charged_as_shown(gw: ShortHold, credit_id: str, shown: int, output_tokens: int) -> None:
    """The account paid exactly `shown`, once, with one ordinary history row; books close."""
    gw.ledger.wait_reserved_zero(credit_id, timeout=10)
    _, debits, _ = gw.ledger.account(credit_id)
    rows = gw.ledger.queries(credit_id)
    history = [(r.query_source, int(r.output_count), int(r.price)) for r in rows]
    print(f"\nclient shown ${shown / NANOS}, account charged ${debits / NANOS}; history {history}")
    assert debits == shown, "charged exactly the usage.cost the client was shown"
    assert [(source, out) for source, out, _ in history] == [("api", output_tokens)]
    assert sum(price for _, _, price in history) == debits
    check = ledger_check(gw.env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_stream_outliving_its_hold_timeout_is_charged_once(short_hold: ShortHold) -> None:
    """Holds cover 16, 32, 64, 128 tokens and are extended (and re-timed) when half used: at 8,
    16 and 32 tokens, i.e. 0.8 s, 1.6 s and 3.2 s into a 10 tokens/s stream of 60 tokens. With a
    1 s hold timeout nothing re-times them after 3.2 s, so the sweeper resolves them at ~4.2 s
    while the stream runs until ~6 s (and once already between 2.6 s and 3.2 s)."""
    credit_id, key = create_account(short_hold.url, "10")

    async def one() -> StreamResult:
        async with httpx.AsyncClient(timeout=30) as client:
            return await stream_chat(client, short_hold.url, key, chat_body("sweep-model", 100))

    res = asyncio.run(one())
    assert res.status == 200 and res.done and res.finish_reason == "stop", res
    assert res.tokens == 60
    charged_as_shown(short_hold, credit_id, res.cost, 60)


def test_slow_non_stream_completion_is_charged(short_hold: ShortHold) -> None:
    """One hold for the whole answer, taken before a 6 s upstream call (60 tokens at 10/s)."""
    credit_id, key = create_account(short_hold.url, "10")
    body = {**chat_body("sweep-model", 100), "stream": False}
    del body["stream_options"]
    r = httpx.post(
        short_hold.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    usage = json.loads(r.text, parse_float=Decimal)["usage"]
    assert usage["completion_tokens"] == 60
    shown = usd_nanos(usage["cost"])
    assert shown == usd_nanos(Decimal(r.headers["x-farebox-cost"]))
    charged_as_shown(short_hold, credit_id, shown, 60)
