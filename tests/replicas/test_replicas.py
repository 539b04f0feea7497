"""Three `farebox serve` replicas on one fresh PostgreSQL database behind haproxy (started here,
health-checking /readyz), with `farebox sim` upstream.

- 10,000 paid requests racing one account spend exactly what its history says, and its balance
  never goes below zero;
- a revoked key stops on every replica within FAREBOX_KEY_CACHE_TTL_S (1 s);
- a rolling restart (SIGTERM, wait, start again, one replica at a time) under load fails no
  request: the client counts every non-2xx and every broken stream, and does not retry;
- SIGKILL twenty times under streaming load loses nothing: each request is completed and billed,
  failed and free, or cut and billed no more than it delivered; every hold is swept; the ledger
  check is clean.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from replica_support import (
    HEALTH_INTERVAL_MS,
    Outcome,
    Replica,
    chat,
    lean_session,
    post_chat,
    require_haproxy,
    start_haproxy,
)

from e2e_support import (
    ADMIN_TOKEN,
    IN_NANOS,
    OUT_NANOS,
    Ledger,
    Proc,
    create_account,
    ledger_check,
    require_pg,
    serve_env,
    usd_nanos,
    write_catalog,
)
from support import NANOS, free_port, fresh_pg_database

MODELS = {
    "fast-model": "tps=1000000,output_tokens=8",  # answers at once: for the 10,000-request race
    "stream-model": "tps=100,output_tokens=30",  # 0.3 s streams
}
HOLD_TIMEOUT_S = 3
NOTICE_S = 2 * HEALTH_INTERVAL_MS / 1000 + 0.6  # haproxy's fall (2 checks) and a margin
REPLICAS = 3


@dataclass
class Cluster:
    replicas: list[Replica]
    lb: Proc
    env: dict[str, str]
    ledger: Ledger

    @property
    def url(self) -> str:
        return self.lb.url


@pytest.fixture(scope="module")
def cluster(sim_proc: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    haproxy = require_haproxy()
    require_pg()
    folder = tmp_path_factory.mktemp("replicas")
    catalog = write_catalog(folder / "catalog.json", sim_proc.url, MODELS)
    with fresh_pg_database() as url:
        env = serve_env(
            url,
            catalog,
            hold_timeout_s=HOLD_TIMEOUT_S,
            sweep_interval_s=0.5,
            stream_increment_tokens=16,
            drain_s=10,
            drain_notice_s=NOTICE_S,
        )
        replicas = [Replica(f"replica-{i}", free_port(), env) for i in range(REPLICAS)]
        for r in replicas:  # all at once on the fresh database (migrations take a lock)
            r.spawn()
        ledger = Ledger(url)
        try:
            for r in replicas:
                r.wait_ready()
            lb = start_haproxy(haproxy, replicas, folder)
            lb.shared = True
            for r in replicas:
                assert r.proc is not None
                r.proc.shared = True
            yield Cluster(replicas, lb, env, ledger)
        finally:
            for r in replicas:
                if r.proc is not None:
                    r.proc.stop()
            ledger.close()


def _history_nanos(url: str, credit_id: str) -> int:
    total, page = 0, 1
    while True:
        r = httpx.get(
            url + "/queries/history",
            params={"credit_id": credit_id, "page": page, "page_count": 100},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        data = json.loads(r.text, parse_float=Decimal)
        total += sum(usd_nanos(row["price_in_usd"]) for row in data["data"])
        if page >= data["pagination"]["total_pages"]:
            return total
        page += 1


def _balance(url: str, credit_id: str) -> tuple[int, int]:
    r = httpx.post(url + "/credits/balance", json={"credit_id": credit_id}, timeout=30)
    assert r.status_code == 200, r.text
    data = json.loads(r.text, parse_float=Decimal)
    return usd_nanos(data["balance"]), usd_nanos(data["available"])


def _check(cluster: Cluster) -> None:
    check = ledger_check(cluster.env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_revoked_key_stops_on_every_replica_within_one_second(cluster: Cluster) -> None:
    credit_id, _ = create_account(cluster.url, "10")
    made = httpx.post(
        cluster.url + "/keys", json={"name": "delegated"}, headers={"x-credit-id": credit_id}
    )
    assert made.status_code == 201, made.text
    key_id, key = made.json()["data"]["_id"], made.json()["data"]["api_key"]
    body = chat("fast-model", 1, stream=False)
    auth = {"Authorization": f"Bearer {key}"}
    for r in cluster.replicas:  # every replica has the key cached
        answer = httpx.post(r.url + "/v1/chat/completions", json=body, headers=auth, timeout=30)
        assert answer.status_code == 200, answer.text

    revoked = httpx.delete(
        cluster.replicas[0].url + f"/keys/{key_id}", headers={"x-credit-id": credit_id}
    )
    assert revoked.status_code == 200, revoked.text
    at = time.monotonic()
    stopped: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        while len(stopped) < len(cluster.replicas) and time.monotonic() - at < 5:
            for r in cluster.replicas:
                if r.name in stopped:
                    continue
                answer = client.post(r.url + "/v1/chat/completions", json=body, headers=auth)
                if answer.status_code == 401:
                    stopped[r.name] = time.monotonic() - at
                else:
                    assert answer.status_code == 200, answer.text
            time.sleep(0.02)
    print(f"revoked key refused after (s): {stopped}")
    assert len(stopped) == len(cluster.replicas), stopped
    # FAREBOX_KEY_CACHE_TTL_S is 1.0; the margin is for the polling loop on a loaded machine.
    assert max(stopped.values()) <= 1.0 + 0.3, stopped


def test_ten_thousand_requests_racing_one_account_spend_exactly_what_history_says(
    cluster: Cluster,
) -> None:
    total, concurrency = 10_000, 64
    credit_id, key = create_account(cluster.url, "120")  # money for about 3 in 4
    granted = 120 * NANOS
    outcomes: list[Outcome] = []
    lowest: list[tuple[int, int]] = []

    async def race() -> None:
        async with lean_session(concurrency + 4) as session:
            started = 0
            stop = asyncio.Event()
            body = chat("fast-model", 8, stream=False)

            async def worker() -> None:
                nonlocal started
                while started < total:
                    started += 1
                    outcomes.append(await post_chat(session, cluster.url, key, body))

            async def poll() -> None:
                while not stop.is_set():
                    async with session.post(
                        cluster.url + "/credits/balance", json={"credit_id": credit_id}
                    ) as r:
                        data = json.loads(await r.text(), parse_float=Decimal)
                        lowest.append((usd_nanos(data["balance"]), usd_nanos(data["available"])))
                    await asyncio.sleep(0.02)

            poller = asyncio.create_task(poll())
            began = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            print(f"{total} requests in {time.monotonic() - began:.1f} s at c={concurrency}")
            stop.set()
            await poller

    asyncio.run(race())
    statuses = Counter(o.status for o in outcomes)
    print(f"statuses: {dict(statuses)}")
    assert len(outcomes) == total
    assert set(statuses) <= {200, 402}, statuses  # paid, or refused for want of money
    assert statuses[200] > 0 and statuses[402] > 0  # the money ran out mid-race
    paid = sum(usd_nanos(Decimal(o.cost)) for o in outcomes if o.status == 200 and o.cost)
    balance, available = _balance(cluster.url, credit_id)
    assert balance >= 0 and available >= 0
    assert min(b for b, _ in lowest) >= 0 and min(a for _, a in lowest) >= 0
    assert _history_nanos(cluster.url, credit_id) == paid == granted - balance
    credits, debits, pending = cluster.ledger.account(credit_id)
    assert pending == 0 and credits == granted and debits == paid
    assert len(cluster.ledger.queries(credit_id)) == statuses[200]
    _check(cluster)


async def _load(
    cluster: Cluster, key: str, stop: asyncio.Event, workers: int, mixed: bool
) -> list[Outcome]:
    """Requests through the load balancer until `stop`: streams, and with `mixed` also
    non-stream answers."""
    outcomes: list[Outcome] = []
    async with lean_session(workers + 2) as session:

        async def worker(n: int) -> None:
            i = 0
            while not stop.is_set():
                stream = not mixed or (n + i) % 2 == 0
                body = chat("stream-model", 30, True) if stream else chat("fast-model", 8, False)
                outcome = await post_chat(session, cluster.url, key, body)
                outcomes.append(outcome)
                if outcome.request_id is None:
                    await asyncio.sleep(0.05)  # no replica answered: do not spin
                i += 1

        await asyncio.gather(*(worker(n) for n in range(workers)))
    return outcomes


def _served_whole(o: Outcome) -> bool:
    if o.status != 200 or o.broken is not None:
        return False
    if o.stream is None:
        return o.cost is not None
    return o.stream.done and o.stream.error is None and o.stream.usage is not None


def test_a_rolling_restart_under_load_fails_no_request(cluster: Cluster) -> None:
    credit_id, key = create_account(cluster.url, "500")
    granted = 500 * NANOS

    async def roll() -> list[Outcome]:
        stop = asyncio.Event()
        load = asyncio.create_task(_load(cluster, key, stop, workers=24, mixed=True))
        await asyncio.sleep(1)
        for r in cluster.replicas:
            status = await asyncio.to_thread(r.terminate)
            assert status == 0, r.proc.log() if r.proc else ""
            r.spawn()
            assert r.proc is not None
            r.proc.shared = True
            await asyncio.to_thread(r.wait_ready)
            await asyncio.sleep(3 * HEALTH_INTERVAL_MS / 1000)  # haproxy sees it up
        await asyncio.sleep(0.5)
        stop.set()
        return await load

    outcomes = asyncio.run(roll())
    failed = [o for o in outcomes if not _served_whole(o)]
    streams = sum(o.stream is not None for o in outcomes)
    print(f"rolling restart: {len(outcomes)} requests ({streams} streams), {len(failed)} failed")
    assert len(outcomes) > 100
    assert not failed, failed[:5]
    cluster.ledger.wait_reserved_zero(cluster.ledger.account_id(credit_id), 30)
    paid = sum(
        o.stream.cost if o.stream is not None else usd_nanos(Decimal(o.cost or "0"))
        for o in outcomes
    )
    balance, _ = _balance(cluster.url, credit_id)
    assert _history_nanos(cluster.url, credit_id) == paid == granted - balance
    _check(cluster)


def test_sigkill_twenty_times_under_load_loses_nothing(cluster: Cluster) -> None:
    kills = 20
    credit_id, key = create_account(cluster.url, "500")
    granted = 500 * NANOS

    async def massacre() -> list[Outcome]:
        stop = asyncio.Event()
        load = asyncio.create_task(_load(cluster, key, stop, workers=8, mixed=False))
        for k in range(kills):
            r = cluster.replicas[k % len(cluster.replicas)]
            await asyncio.to_thread(r.wait_ready)  # started again two kills ago
            # Another replica serves while this one is down (a crash, not an outage).
            await asyncio.to_thread(cluster.replicas[(k + 1) % len(cluster.replicas)].wait_ready)
            await asyncio.sleep(0.5)  # under load
            r.kill9()
            r.spawn()
            assert r.proc is not None
            r.proc.shared = True
        for r in cluster.replicas:
            await asyncio.to_thread(r.wait_ready)
        await asyncio.sleep(0.5)
        stop.set()
        return await load

    outcomes = asyncio.run(massacre())
    account = cluster.ledger.account_id(credit_id)
    cluster.ledger.wait_reserved_zero(account, HOLD_TIMEOUT_S * 5 + 10)  # swept
    assert cluster.ledger.open_holds(credit_id) == []

    rows = cluster.ledger.queries(credit_id)
    billed = {str(row[0]): int(row[4]) for row in rows}
    recovered = {str(row[0]) for row in rows if row[5] == "recovered"}
    seen = {o.request_id: o for o in outcomes if o.request_id}
    whole = [o for o in outcomes if _served_whole(o)]
    prompt = whole[0].stream.usage["prompt_tokens"] if whole and whole[0].stream else 0
    counts: Counter[str] = Counter()
    for o in outcomes:
        if o.request_id is None:
            counts["failed"] += 1  # before the gateway answered: see the unseen rows below
            continue
        price = billed.get(o.request_id, 0)
        if _served_whole(o):
            assert o.stream is not None
            if price == o.stream.cost and o.request_id not in recovered:
                counts["completed"] += 1
                continue
            # Killed after the last event went out and before its settlement committed (the
            # documented window of a few ms, README "What a crash costs"): the sweeper posted
            # what was last recorded, never more than was delivered; the operator bears the rest.
            assert price < o.stream.cost, (o, price)
            assert o.request_id in recovered or o.request_id not in billed, o
            counts["completed, settlement lost with the process"] += 1
        else:
            delivered = o.stream.tokens if o.stream is not None else 0
            assert price <= prompt * IN_NANOS + delivered * OUT_NANOS, (o, price)
            counts["cut"] += 1
    statuses = Counter(o.status for o in outcomes if o.request_id is None)
    print(f"{kills} kills: {dict(counts)}; {len(billed)} billed, {len(recovered)} recovered")
    print(f"statuses of the failed: {dict(statuses)}")
    assert counts["completed"] > 0 and counts["cut"] + counts["failed"] > 0
    assert counts["completed, settlement lost with the process"] <= kills
    unseen = {rid: price for rid, price in billed.items() if rid not in seen}
    assert all(price == 0 for price in unseen.values()), unseen  # failed, so free
    balance, available = _balance(cluster.url, credit_id)
    assert balance == available >= 0
    assert _history_nanos(cluster.url, credit_id) == sum(billed.values()) == granted - balance
    _check(cluster)


def test_admin_token_is_the_clusters(cluster: Cluster) -> None:
    """The load balancer reaches our replicas (not another run's gateways on a reused port)."""
    for r in cluster.replicas:
        answer = httpx.post(
            r.url + "/admin/credits",
            json={"credit_id": "probe-no-such-account", "amount_usd": "1"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 404
