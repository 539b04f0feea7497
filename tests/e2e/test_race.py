"""Two `farebox serve` processes on one PostgreSQL database race 200 concurrent streams for an
account's last dollars, then for a key's usage limit.

Each account or key can pay for about 50 answers of 40 output tokens ($0.08 each at $2000 per
1M output tokens). The servers hold only 16 output tokens at a time, so the race is fought both
at the first hold (who gets to start: 200 or 402) and at every hold extension while the streams
run (who may keep going: a stream that cannot extend ends early with finish_reason "length").

What must hold however the race goes: the balance (and a key's spend) never passes its limit,
nothing stays reserved, and the money adds up to the nanodollar four ways: granted - balance =
the ledger's posted debits = Σ query history (DB and GET /queries/history) = Σ the `usage.cost`
the clients were shown. `farebox ledger check` passes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx

from e2e_support import (
    IN_NANOS,
    OUT_NANOS,
    Cluster,
    Extremes,
    Ledger,
    StreamResult,
    chat_body,
    create_account,
    history_nanos,
    ledger_check,
    poll_api_balance,
    stream_chat,
)
from support import NANOS

REQUESTS = 200
MAX_TOKENS = 40
GRANT_USD = "4"  # 50 answers of 40 output tokens, less the input tokens
STAGGER_S = 0.005


class DbPoller(threading.Thread):
    """Reads the account (and key) rows in a loop while the race runs."""

    def __init__(self, ledger: Ledger, account_id: str, key_id: str | None = None) -> None:
        super().__init__(daemon=True)
        self.ledger = ledger
        self.account_id = account_id
        self.key_id = key_id
        self.seen = Extremes()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                credits, debits, pending = self.ledger.account(self.account_id)
                self.seen.see_account(credits - debits, credits - debits - pending)
                if self.key_id is not None:
                    _limit, posted, key_pending, _total = self.ledger.key(self.key_id)
                    self.seen.max_key_committed = max(
                        self.seen.max_key_committed, posted + key_pending
                    )
                    self.seen.max_key_posted = max(self.seen.max_key_posted, posted)
                self.stop.wait(0.005)
        except BaseException as exc:
            self.error = exc


async def _race(urls: list[str], key: str, credit_id: str) -> tuple[list[StreamResult], Extremes]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        stop = asyncio.Event()
        api_seen = Extremes()
        poller = asyncio.create_task(poll_api_balance(client, urls, credit_id, stop, api_seen))
        try:

            async def one(i: int) -> StreamResult:
                # Arrivals spread over the first second: while early streams extend their holds
                # and settle (returning what they did not use), later ones race for what is left.
                await asyncio.sleep(i * STAGGER_S)
                url = urls[i % len(urls)]
                return await stream_chat(client, url, key, chat_body("race-model", MAX_TOKENS))

            results = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        finally:
            stop.set()
            await poller
    return list(results), api_seen


def run_race(cluster: Cluster, key: str, credit_id: str, key_id: str | None = None):  # type: ignore[no-untyped-def]
    poller = DbPoller(cluster.ledger, credit_id, key_id)
    poller.start()
    started = time.monotonic()
    try:
        results, api_seen = asyncio.run(_race(cluster.urls, key, credit_id))
    finally:
        poller.stop.set()
        poller.join(10)
    print(f"\nrace took {time.monotonic() - started:.2f}s")
    assert poller.error is None, repr(poller.error)
    return results, poller.seen, api_seen


def check_streams(results: list[StreamResult], refusal_code: str) -> list[StreamResult]:
    """Every answer is a whole, honest stream or a clean 402; returns the 200s."""
    statuses = Counter(r.status for r in results)
    assert set(statuses) <= {200, 402}, statuses
    for r in results:
        if r.status == 402:
            assert r.error is not None and r.error.get("code") == refusal_code, r.error
    ok = [r for r in results if r.status == 200]
    assert ok and len(ok) < REQUESTS, f"no contention: {statuses}"
    for r in ok:
        assert r.done and r.error is None and r.broken is None, r
        assert r.usage is not None, r
        assert r.finish_reason in ("stop", "length"), r
        # The usage the client is shown is what it received, and its cost is that usage priced.
        assert r.usage["completion_tokens"] == r.tokens, r
        assert r.tokens <= MAX_TOKENS
        if r.finish_reason == "stop":
            assert r.tokens == MAX_TOKENS, r
        assert r.cost == r.usage["prompt_tokens"] * IN_NANOS + r.tokens * OUT_NANOS, r
    return ok


def check_accounting(
    cluster: Cluster, credit_id: str, granted: int, ok: list[StreamResult]
) -> tuple[int, int]:
    """Returns (charged, final balance) after checking they agree everywhere."""
    settle_s = cluster.ledger.wait_reserved_zero(credit_id, timeout=15)
    credits, debits, pending = cluster.ledger.account(credit_id)
    assert (credits, pending) == (granted, 0)
    final_balance = credits - debits
    assert final_balance >= 0
    charged = granted - final_balance
    rows = cluster.ledger.queries(credit_id)
    assert len(rows) == len(ok), "one history row per answered request"
    assert sum(int(r.price) for r in rows) == charged
    assert sum(r.cost for r in ok) == charged, "clients were shown what they were charged"
    for url in cluster.urls:
        assert asyncio.run(_history(url, credit_id)) == (len(ok), charged)
    check = ledger_check(cluster.env)
    assert check.returncode == 0, check.stdout + check.stderr
    print(f"settled {settle_s:.2f}s after the last stream; {check.stdout.strip()}")
    return charged, final_balance


async def _history(url: str, credit_id: str) -> tuple[int, int]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await history_nanos(client, url, credit_id)


def summary(name: str, results: list[StreamResult], charged: int, final: int) -> None:
    ok = [r for r in results if r.status == 200]
    finishes = Counter(r.finish_reason for r in ok)
    tokens = sum(r.tokens for r in ok)
    print(
        f"\n{name}: {len(ok)} x 200 ({dict(finishes)}), "
        f"{len(results) - len(ok)} x 402; {tokens} output tokens delivered; "
        f"charged ${charged / NANOS:.9f}, final balance ${final / NANOS:.9f}"
    )


def test_race_for_the_balance(cluster: Cluster) -> None:
    credit_id, key = create_account(cluster.urls[0], GRANT_USD)
    granted = int(GRANT_USD) * NANOS
    results, db_seen, api_seen = run_race(cluster, key, credit_id)
    ok = check_streams(results, "insufficient_funds")
    # Never below zero, and never more reserved than there was: seen from the database and
    # from both servers' balance endpoints while the streams ran.
    assert db_seen.samples > 10 and api_seen.samples >= 2
    assert db_seen.min_balance is not None and db_seen.min_balance >= 0
    assert db_seen.min_available is not None and db_seen.min_available >= 0
    assert api_seen.min_balance is not None and api_seen.min_balance >= 0
    assert api_seen.min_available is not None and api_seen.min_available >= 0
    charged, final = check_accounting(cluster, credit_id, granted, ok)
    # The account was drained: what is left cannot pay for one more output token.
    assert final < IN_NANOS * 50 + OUT_NANOS
    summary("balance race", results, charged, final)
    print(f"polls: {db_seen.samples} database, {api_seen.samples} API")


def test_race_for_a_key_limit(cluster: Cluster) -> None:
    credit_id, _ = create_account(cluster.urls[0], "1000")
    granted = 1000 * NANOS
    r = httpx.post(
        cluster.urls[0] + "/keys",
        json={"name": "race-key", "usage_limit_usd": 4},
        headers={"x-credit-id": credit_id},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    key_id, key = r.json()["data"]["_id"], r.json()["data"]["api_key"]
    limit = 4 * NANOS
    results, db_seen, _api_seen = run_race(cluster, key, credit_id, key_id)
    ok = check_streams(results, "key_limit_reached")
    assert db_seen.samples > 10
    assert db_seen.max_key_committed <= limit, "spend + reservations passed the key's limit"
    assert db_seen.max_key_posted <= limit
    charged, final = check_accounting(cluster, credit_id, granted, ok)
    usage_limit, period_posted, period_pending, total_posted = cluster.ledger.key(key_id)
    assert usage_limit == limit
    assert period_pending == 0
    assert period_posted == total_posted == charged <= limit
    # The key's limit was reached: what is left cannot pay for one more output token.
    assert limit - charged < IN_NANOS * 50 + OUT_NANOS
    rows = cluster.ledger.queries(credit_id)
    assert {row.key_id for row in rows} == {key_id}
    summary("key-limit race", results, charged, final)
    print(f"key spend ${total_posted / NANOS:.9f} of ${limit / NANOS} limit")
