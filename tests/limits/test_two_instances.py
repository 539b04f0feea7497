"""Two gateway instances on one database: with one Redis they share each key's limits and drop a
revoked or changed key at once (pub/sub, long before their key cache would expire); without
Redis each counts alone and serves a revoked key until its cache entry expires."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from farebox.sim.server import SimServer

from redis_support import REDIS_URL, require_redis, test_prefix
from support import (
    DB_KINDS,
    Gateway,
    database_url,
    new_account,
    require_db,
    running_gateway,
    wait_until,
)
from support import test_catalog as catalog_for

PROMPT = [{"role": "user", "content": "Say something short"}]
FREE = "free-model"
LONG_TTL_S = 3600.0  # the key cache would serve a stale key for an hour without the broadcast


def chat(gw: Gateway, key: str, model: str = "test-model") -> httpx.Response:
    with gw.client() as c:
        return c.post(
            "/v1/chat/completions",
            json={"model": model, "messages": PROMPT, "max_tokens": 20},
            headers={"Authorization": f"Bearer {key}"},
        )


def limited_key(gw: Gateway, **limits: Any) -> tuple[str, str, str]:
    """(credit_id, key id, raw key) of a new funded account's key with `limits`."""
    with gw.client() as c:
        credit_id, _ = new_account(c, 1)
        r = c.post("/keys", json={"name": "k", **limits}, headers={"x-credit-id": credit_id})
        assert r.status_code == 201, r.text
        return credit_id, r.json()["data"]["_id"], r.json()["data"]["api_key"]


def pair(
    kind: str, tmp_path: Path, sim: SimServer, **settings: Any
) -> Iterator[tuple[Gateway, Gateway]]:
    require_db(kind)
    catalog = catalog_for(sim.url)
    with ExitStack() as stack:
        url = stack.enter_context(database_url(kind, tmp_path))
        a = stack.enter_context(running_gateway(url, catalog, **settings))
        b = stack.enter_context(running_gateway(url, catalog, **settings))
        yield a, b


@pytest.fixture(params=DB_KINDS)
def shared(
    request: pytest.FixtureRequest, tmp_path: Path, sim: SimServer
) -> Iterator[tuple[Gateway, Gateway]]:
    """Two instances on one database and one Redis (this test's own prefix)."""
    require_redis()
    settings = {
        "redis_url": REDIS_URL,
        "redis_prefix": test_prefix(),
        "key_cache_ttl_s": LONG_TTL_S,
    }
    for a, b in pair(request.param, tmp_path, sim, **settings):
        for gw in (a, b):
            broadcast = gw.services.limits.broadcast
            assert wait_until(broadcast.subscribed.is_set)
        yield a, b


@pytest.fixture(params=DB_KINDS)
def apart(
    request: pytest.FixtureRequest, tmp_path: Path, sim: SimServer
) -> Iterator[tuple[Gateway, Gateway]]:
    """Two instances on one database, no Redis."""
    yield from pair(request.param, tmp_path, sim, key_cache_ttl_s=LONG_TTL_S)


def test_two_instances_with_one_redis_share_one_rpm_limit(
    shared: tuple[Gateway, Gateway],
) -> None:
    a, b = shared
    _, _, key = limited_key(a, rpm_limit=4)
    assert [chat(gw, key).status_code for gw in (a, b, a, b)] == [200] * 4
    refused = chat(b, key)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert chat(a, key).status_code == 429


def test_tokens_settled_on_one_instance_limit_the_other(shared: tuple[Gateway, Gateway]) -> None:
    a, b = shared
    _, _, key = limited_key(a, tpm_limit=25)
    assert chat(a, key).status_code == 200  # settles 29 tokens, counted in Redis
    a.loop.run(a.services.limits.gate.drain())
    r = chat(b, key)
    assert r.status_code == 429 and "tokens per minute" in r.json()["error"]["message"]


def test_without_redis_each_instance_counts_alone(apart: tuple[Gateway, Gateway]) -> None:
    a, b = apart
    _, _, key = limited_key(a, rpm_limit=2)
    assert [chat(gw, key).status_code for gw in (a, a, b, b)] == [200] * 4
    assert chat(a, key).status_code == 429 and chat(b, key).status_code == 429


def test_a_key_revoked_on_one_instance_is_refused_on_the_other_at_once(
    shared: tuple[Gateway, Gateway],
) -> None:
    """A free model holds nothing, so the ledger never sees the key: only the cache decides
    (a paid request of a revoked key is refused at its hold anyway)."""
    a, b = shared
    credit_id, key_id, key = limited_key(a)
    assert chat(b, key, FREE).status_code == 200  # b caches the key (for an hour)
    with a.client() as c:
        assert c.delete(f"/keys/{key_id}", headers={"x-credit-id": credit_id}).status_code == 200
    # well under the hour-long TTL: the broadcast dropped b's entry (milliseconds; the wait
    # only absorbs the scheduling of two event loops on a busy machine)
    assert wait_until(lambda: chat(b, key, FREE).status_code == 401, timeout=5)
    r = chat(b, key, FREE)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_a_scope_changed_on_one_instance_applies_on_the_other_at_once(
    shared: tuple[Gateway, Gateway],
) -> None:
    a, b = shared
    credit_id, key_id, key = limited_key(a)
    assert chat(b, key).status_code == 200
    with a.client() as c:
        r = c.patch(
            f"/keys/{key_id}",
            json={"allowed_models": ["claude-*"]},
            headers={"x-credit-id": credit_id},
        )
        assert r.status_code == 200
    assert wait_until(lambda: chat(b, key).status_code == 403, timeout=5)


def test_without_redis_the_other_instance_serves_a_revoked_key_until_its_cache_expires(
    apart: tuple[Gateway, Gateway],
) -> None:
    """The control: what the broadcast fixes."""
    a, b = apart
    credit_id, key_id, key = limited_key(a)
    assert chat(b, key, FREE).status_code == 200
    with a.client() as c:
        assert c.delete(f"/keys/{key_id}", headers={"x-credit-id": credit_id}).status_code == 200
    assert chat(a, key, FREE).status_code == 401
    assert chat(b, key, FREE).status_code == 200  # stale for up to FAREBOX_KEY_CACHE_TTL_S


def test_without_redis_the_other_instance_keeps_an_old_scope_until_its_cache_expires(
    apart: tuple[Gateway, Gateway],
) -> None:
    a, b = apart
    credit_id, key_id, key = limited_key(a)
    assert chat(b, key).status_code == 200
    with a.client() as c:
        r = c.patch(
            f"/keys/{key_id}",
            json={"allowed_models": ["claude-*"]},
            headers={"x-credit-id": credit_id},
        )
        assert r.status_code == 200
    assert chat(a, key).status_code == 403
    assert chat(b, key).status_code == 200


def test_a_rotated_credit_id_drops_the_accounts_cached_keys_on_every_instance(
    shared: tuple[Gateway, Gateway],
) -> None:
    a, b = shared
    credit_id, key_id, key = limited_key(a)
    assert chat(b, key, FREE).status_code == 200
    cache = b.services.keys._cache
    assert any(entry is not None and entry.id == key_id for _, entry in list(cache.values()))
    with a.client() as c:
        assert c.post("/credits/rotate", headers={"x-credit-id": credit_id}).status_code == 200
    assert wait_until(
        lambda: (
            not any(entry is not None and entry.id == key_id for _, entry in list(cache.values()))
        ),
        timeout=5,
    )
    assert chat(b, key, FREE).status_code == 200  # the key itself still works
