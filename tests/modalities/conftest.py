"""A live gateway per module and database kind, serving the media test catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from media_support import media_catalog, media_env
from support import Gateway, database_url, pg_available, running_gateway

DB_KINDS = ["sqlite", "postgresql"]


def require_db(kind: str) -> None:
    if kind == "postgresql" and not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is unreachable; CI requires it")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is unreachable")


@pytest.fixture(scope="module", params=DB_KINDS)
def media_gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("media")
    env = media_env(tmp)
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, media_catalog(sim.url), extra_env=env) as gw,
    ):
        yield gw
