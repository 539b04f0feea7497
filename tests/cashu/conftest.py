"""A real nutshell mint (trusted), a second one (untrusted), and a gateway that takes ecash from
the first and Lightning from its dev wallet, serving images, data and chat, per database kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farebox.sim.server import SimServer

from cashu_support import Mint, Wallet, cashu_catalog, require_cashu, running_mint
from data_support import data_test_catalog
from media_support import media_env
from pay402_support import PAY_ENV
from support import Gateway, database_url, require_db, running_gateway


@pytest.fixture(scope="session")
def cashu_venv() -> Path:
    return require_cashu()


@pytest.fixture(scope="session")
def mint(cashu_venv: Path) -> Iterator[Mint]:
    with running_mint(cashu_venv) as m:
        yield m


@pytest.fixture(scope="session")
def untrusted_mint(cashu_venv: Path) -> Iterator[Mint]:
    with running_mint(cashu_venv, key="another-mint") as m:
        yield m


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cashu_gw(
    request: pytest.FixtureRequest,
    sim: SimServer,
    mint: Mint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("cashu")
    env = {**media_env(tmp), **PAY_ENV, "FAREBOX_CASHU_MINTS": mint.url + "/"}
    with (
        database_url(request.param, tmp) as url,
        running_gateway(
            url, cashu_catalog(sim.url), data_catalog=data_test_catalog(sim.url), extra_env=env
        ) as gw,
    ):
        yield gw


@pytest.fixture(autouse=True)
def ledger_clean_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """`farebox ledger check` must be clean after every test, whatever it paid for."""
    yield
    if "cashu_gw" in request.fixturenames:
        report = request.getfixturevalue("cashu_gw").check()
        assert report.ok, report.problems


@pytest.fixture(scope="module")
def wallet(cashu_venv: Path, mint: Mint) -> Iterator[Wallet]:
    """The payer's wallet at the trusted mint, with 5,000 sats."""
    w = Wallet(cashu_venv, mint)
    w.mint_sats(5000)
    yield w
    w.close()
