"""POST /accounts/create is limited per client address (a burst, then a rate): a 429 in our
envelope with Retry-After, and no account made. X-Forwarded-For counts only from a trusted
proxy (FAREBOX_TRUSTED_PROXIES), read from the right."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from farebox.db.schema import accounts
from farebox.sim.server import SimServer

from support import Gateway, database_url, require_db, running_gateway
from support import test_catalog as sim_catalog

BURST = 3


def gateway_with(
    kind: str, sim: SimServer, tmp: pytest.TempPathFactory, **settings: object
) -> Iterator[Gateway]:
    require_db(kind)
    with (
        database_url(kind, tmp.mktemp("signup")) as url,
        running_gateway(
            url, sim_catalog(sim.url), signup_per_minute=1, signup_burst=BURST, **settings
        ) as gw,
    ):
        yield gw


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def direct(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Clients connect straight to it: no proxy is trusted."""
    yield from gateway_with(request.param, sim, tmp_path_factory)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def proxied(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Behind a load balancer on 127.0.0.1, which it trusts."""
    yield from gateway_with(request.param, sim, tmp_path_factory, trusted_proxies=("127.0.0.1",))


def account_rows(gw: Gateway) -> int:
    count = gw.loop.run(
        gw.services.db.read(
            lambda c: c.execute(select(func.count()).select_from(accounts)).scalar()
        )
    )
    return int(count)


def create(c: httpx.Client, forwarded: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return c.post("/accounts/create", headers=headers)


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
    assert "Try again in" in error["message"]
    assert int(r.headers["retry-after"]) >= 1


def test_account_creation_is_limited_per_address_and_spoofed_forwarding_is_ignored(
    direct: Gateway,
) -> None:
    with direct.client() as c:
        for _ in range(BURST):
            assert create(c).status_code == 201
        rows = account_rows(direct)
        assert_limited(create(c))
        # X-Forwarded-For from a peer that is not a trusted proxy changes nothing
        for spoofed in ("198.51.100.1", "198.51.100.2, 203.0.113.5", "::1"):
            assert_limited(create(c, spoofed))
    assert account_rows(direct) == rows  # a refused request makes nothing
    with direct.client() as c:  # other endpoints are not limited by it
        assert c.get("/healthz").status_code == 200


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(proxied: Gateway) -> None:
    with proxied.client() as c:
        for _ in range(BURST):
            assert create(c, "198.51.100.1").status_code == 201
        assert_limited(create(c, "198.51.100.1"))
        # the client itself wrote the leftmost hop: the proxy's rightmost entry is what counts
        assert_limited(create(c, "203.0.113.77, 198.51.100.1"))
        assert create(c, "198.51.100.2").status_code == 201
        assert create(c, "198.51.100.1, 198.51.100.3").status_code == 201
