"""A live gateway serving the media catalog, with the dev wallet as its Lightning backend (so
keyless image and video requests are paid per request), per module and database kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from lnbits_support import LNbitsServer, LNbitsWallet, require_lnbits, running_lnbits
from media_support import media_catalog, media_env
from pay402_support import PAY_ENV
from support import Gateway, database_url, require_db, running_gateway


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pay_gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("pay402")
    env = {**media_env(tmp), **PAY_ENV}
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, media_catalog(sim.url), extra_env=env) as gw,
    ):
        yield gw


@pytest.fixture(autouse=True)
def ledger_clean_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """`farebox ledger check` must be clean after every test, whatever it paid for."""
    yield
    if "pay_gw" in request.fixturenames:
        report = request.getfixturevalue("pay_gw").check()
        assert report.ok, report.problems


@pytest.fixture(scope="session")
def lnbits() -> Iterator[LNbitsServer]:
    """A real LNbits (FakeWallet) for these tests, from its own virtualenv."""
    with running_lnbits(require_lnbits()) as server:
        yield server


@pytest.fixture(scope="module")
def lnbits_pay_gw(
    sim: SimServer, lnbits: LNbitsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, LNbitsWallet]]:
    """A gateway whose Lightning backend is an LNbits wallet (SQLite; the ledger side is the
    same as with the dev wallet, tested on both databases above)."""
    wallet = lnbits.create_wallet("farebox-pay402")
    tmp = tmp_path_factory.mktemp("pay402-lnbits")
    env = {
        **media_env(tmp),
        "FAREBOX_LNBITS_URL": lnbits.url,
        "FAREBOX_LNBITS_INVOICE_KEY": wallet.inkey,
        "FAREBOX_TOPUP_RATES": PAY_ENV["FAREBOX_TOPUP_RATES"],
        "FAREBOX_PAY402_CHALLENGES_PER_MIN": "0",
    }
    with (
        database_url("sqlite", tmp) as url,
        running_gateway(url, media_catalog(sim.url), extra_env=env) as gw,
    ):
        yield gw, wallet
        report = gw.check()
        assert report.ok, report.problems
