"""Fixtures shared by every test: databases of both kinds, a simulator, a live gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farebox.sim.config import SimConfig
from farebox.sim.server import SimServer

from support import (
    Gateway,
    database_url,
    require_db,
    running_gateway,
    running_sim,
    test_catalog,
)

DB_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    require_db(request.param)
    return str(request.param)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    with database_url(db_kind, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    with running_sim(SimConfig(seed=1)) as (server, _loop):
        yield server


@pytest.fixture(scope="module", params=DB_KINDS)
def gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A live gateway per test module and database kind (tests make their own accounts)."""
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("gw")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, test_catalog(sim.url)) as gw,
    ):
        yield gw
