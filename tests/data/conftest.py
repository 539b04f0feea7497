"""A live gateway per module and database kind, its data catalog answered by the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from data_support import data_test_catalog
from support import Gateway, database_url, require_db, running_gateway, test_catalog

DB_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=DB_KINDS)
def data_gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("data")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, test_catalog(sim.url), data_catalog=data_test_catalog(sim.url)) as gw,
    ):
        yield gw
