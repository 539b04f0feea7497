"""A live gateway with the dev wallet on and a fixed BTC/USD rate, per module and database kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from btcpay_fake import BTCPayFake
from lnbits_support import LNbitsServer, LNbitsWallet, require_lnbits, running_lnbits
from payments_support import (
    BTC_USD,
    BTCPAY_KEY,
    BTCPAY_SECRET,
    BTCPAY_STORE,
    DEV_ENV,
    Forwarder,
    btcpay_env,
)
from support import Gateway, database_url, require_db, running_gateway, serve_app, test_catalog


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


@pytest.fixture(scope="session")
def lnbits() -> Iterator[LNbitsServer]:
    """One real LNbits (FakeWallet) for the session, from its own virtualenv."""
    with running_lnbits(require_lnbits()) as server:
        yield server


@pytest.fixture(scope="module")
def lnbits_payer(lnbits: LNbitsServer) -> LNbitsWallet:
    """A second LNbits wallet, funded by the super user, that pays farebox's invoices."""
    wallet = lnbits.create_wallet("payer")
    lnbits.fund(wallet, 1_000_000)
    return wallet


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lnbits_gateway(
    request: pytest.FixtureRequest,
    sim: SimServer,
    lnbits: LNbitsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, LNbitsWallet]]:
    """A gateway on its own LNbits wallet. LNbits' webhooks reach it through a forwarder (the
    gateway's port is known only once it runs); the reconciler is slowed down so tests see the
    webhook do the crediting."""
    require_db(request.param)
    wallet = lnbits.create_wallet(f"farebox-{request.param}")
    tmp = tmp_path_factory.mktemp("lnbits")
    forwarder = Forwarder()
    env = {
        "FAREBOX_LNBITS_URL": lnbits.url,
        "FAREBOX_LNBITS_INVOICE_KEY": wallet.inkey,
        "FAREBOX_TOPUP_RATES": f"BTC={BTC_USD}",
        "FAREBOX_TOPUP_POLL_S": "3600",
    }
    with (
        serve_app(forwarder.app) as forward_url,
        database_url(request.param, tmp) as url,
        running_gateway(
            url, test_catalog(sim.url), extra_env={**env, "FAREBOX_PUBLIC_URL": forward_url}
        ) as gw,
    ):
        forwarder.target = gw.url
        yield gw, wallet


GATEWAY_FIXTURES = ("dev_gateway", "btcpay_gateway", "lnbits_gateway")


@pytest.fixture(autouse=True)
def ledger_clean_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """`farebox ledger check` must be clean after every test, whatever it did."""
    yield
    for name in GATEWAY_FIXTURES:
        if name in request.fixturenames:
            value = request.getfixturevalue(name)
            gw = value[0] if isinstance(value, tuple) else value
            report = gw.check()
            assert report.ok, report.problems
