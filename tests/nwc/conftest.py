"""A gateway with the dev wallet and quick NWC timings, plus a relay and a NIP-47 wallet service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from nwc_wallet import WalletService
from support import (
    Gateway,
    LoopThread,
    database_url,
    require_db,
    running_gateway,
    test_catalog,
)

NWC_ENV = {
    "FAREBOX_DEV_WALLET": "1",
    "FAREBOX_TOPUP_RATES": "BTC=100000",
    "FAREBOX_TOPUP_POLL_S": "0.5",
    "FAREBOX_NWC_DEBOUNCE_S": "0.1",
    "FAREBOX_NWC_TIMEOUT_S": "3",
    "FAREBOX_NWC_CONFIRM_S": "3",
    "FAREBOX_NWC_BACKOFF_S": "1",
    "FAREBOX_NWC_RETRY_S": "0.3",
    # The test relay listens on loopback: the operator's allow-list lets the SSRF guard pass it.
    "FAREBOX_FETCH_ALLOW_HOSTS": "127.0.0.1",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def nwc_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("nwc")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, test_catalog(sim.url), extra_env=NWC_ENV) as gw,
    ):
        yield gw


@pytest.fixture(scope="module")
def wallet(nwc_gateway: Gateway) -> Iterator[WalletService]:
    """The customer's wallet: pays invoices through the gateway's dev wallet."""
    devwallet = nwc_gateway.services.topups.backend("devwallet")
    service = WalletService(pay=devwallet.pay)
    loop = LoopThread()
    loop.run(service.start())
    try:
        yield service
    finally:
        loop.run(service.stop())
        loop.stop()


@pytest.fixture(autouse=True)
def wallet_pays(wallet: WalletService) -> None:
    wallet.mode = "pay"


@pytest.fixture(autouse=True)
def ledger_clean_after_each_test(nwc_gateway: Gateway) -> Iterator[None]:
    yield
    report = nwc_gateway.check()
    assert report.ok, report.problems
