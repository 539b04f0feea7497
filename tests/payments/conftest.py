"""A live gateway with the dev wallet on and a fixed BTC/USD rate, per module and database kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from btcpay_fake import BTCPayFake
from payments_support import (
    BTCPAY_KEY,
    BTCPAY_SECRET,
    BTCPAY_STORE,
    DEV_ENV,
    btcpay_env,
    require_db,
    serve_app,
)
from support import Gateway, database_url, running_gateway, test_catalog


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dev_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("topup")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, test_catalog(sim.url), extra_env=DEV_ENV) as gw,
    ):
        yield gw


@pytest.fixture(scope="module")
def btcpay() -> Iterator[BTCPayFake]:
    fake = BTCPayFake(BTCPAY_STORE, BTCPAY_KEY, BTCPAY_SECRET)
    with serve_app(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def btcpay_gateway(
    request: pytest.FixtureRequest,
    sim: SimServer,
    btcpay: BTCPayFake,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """A gateway whose payment backend is the BTCPay contract fake (webhooks point back at it)."""
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("btcpay")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, test_catalog(sim.url), extra_env=btcpay_env(btcpay.base_url)) as gw,
    ):
        btcpay.webhook_url = gw.url + "/topup/webhook/btcpay"
        yield gw
