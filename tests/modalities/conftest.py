"""A live gateway per module and database kind, serving the media test catalog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.sim.server import SimServer

from media_support import media_catalog, media_env
from support import Gateway, database_url, require_db, running_gateway

DB_KINDS = ["sqlite", "postgresql"]


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
