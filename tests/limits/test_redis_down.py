"""Redis going away mid-run: limits fail open to this process (each replica counts alone, no
request fails for it), the key-change subscription comes back with Redis, and counting moves
back to Redis once it answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farebox.sim.server import SimServer

from redis_support import RedisProcess, test_prefix
from support import Gateway, database_url, free_port, new_account, running_gateway, wait_until
from support import test_catalog as catalog_for

pytestmark = pytest.mark.slow  # starts, kills and restarts a redis-server

PROMPT = [{"role": "user", "content": "hi"}]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(free_port(), str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def chat(c: httpx.Client, key: str) -> int:
    body = {"model": "test-model", "messages": PROMPT, "max_tokens": 5}
    return c.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_limits_fail_open_to_this_process_while_redis_is_down(
    redis_server: RedisProcess, sim: SimServer, tmp_path: Path
) -> None:
    with (
        database_url("sqlite", tmp_path) as url,
        running_gateway(
            url, catalog_for(sim.url), redis_url=redis_server.url, redis_prefix=test_prefix()
        ) as gw,
        gw.client() as c,
    ):
        broadcast = gw.services.limits.broadcast
        assert wait_until(broadcast.subscribed.is_set)
        credit_id, _ = new_account(c, 1)
        r = c.post("/keys", json={"name": "k", "rpm_limit": 2}, headers={"x-credit-id": credit_id})
        key = r.json()["data"]["api_key"]
        assert [chat(c, key) for _ in range(3)] == [200, 200, 429]  # counted in Redis

        redis_server.stop()
        # no request fails for it: this process counts from zero, and still enforces the limit
        assert [chat(c, key) for _ in range(3)] == [200, 200, 429]
        assert wait_until(lambda: not broadcast.subscribed.is_set())
        revoke_while_down = c.delete(
            f"/keys/{r.json()['data']['_id']}", headers={"x-credit-id": credit_id}
        )
        assert revoke_while_down.status_code == 200  # publishing fails quietly; the DB has it

        redis_server.start()  # an empty Redis, as after a restart
        assert wait_until(broadcast.subscribed.is_set, timeout=15)
        r = c.post("/keys", json={"name": "k2", "rpm_limit": 1}, headers={"x-credit-id": credit_id})
        fresh = r.json()["data"]["api_key"]
        # back on Redis (after its one-second pause): a fresh key's count lands there
        assert wait_until(lambda: chat(c, fresh) == 429 and _counted_in_redis(gw), timeout=15)


def _counted_in_redis(gw: Gateway) -> bool:
    windows = gw.services.limits.gate.windows
    redis = gw.services.limits.redis
    found = gw.loop.run(redis.keys(f"{windows.prefix}limits:*"))
    return len(found) >= 1
