"""A live gateway with the dev wallet on and a fixed BTC/USD rate, per module and database kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from payments_support import DEV_ENV, require_db
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
