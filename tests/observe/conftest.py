"""Fixtures for the observability tests: a gateway whose settings each test chooses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from farebox.sim.server import SimServer

from observe_support import DB_KINDS, GatewayFactory
from support import Gateway, database_url, require_db, running_gateway, test_catalog


@pytest.fixture(params=DB_KINDS)
def make_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path: Path
) -> Iterator[GatewayFactory]:
    """`with make_gateway(env={...}, **settings) as gw:` a live gateway on a fresh database."""
    require_db(request.param)

    @contextmanager
    def make(env: dict[str, str] | None = None, **settings: Any) -> Iterator[Gateway]:
        with (
            database_url(request.param, tmp_path) as url,
            running_gateway(url, test_catalog(sim.url), extra_env=env or {}, **settings) as gw,
        ):
            yield gw

    yield make
