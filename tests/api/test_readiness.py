"""/readyz says whether the gateway can serve, without showing a database error to anyone
(it is unauthenticated: a `repr` of the driver's exception named the server and database)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from farebox.sim.server import SimServer

from support import PG_ADMIN_URL, fresh_pg_database, require_db, running_gateway
from support import test_catalog as sim_catalog


def test_readyz_with_the_database_gone_says_unavailable_and_nothing_more(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    require_db("postgresql")
    with fresh_pg_database() as url, running_gateway(url, sim_catalog(sim.url)) as gw:
        with gw.client() as c:
            ready = c.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            name = make_url(url).database
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "database": "unreachable"}
        assert name not in r.text and "127.0.0.1" not in r.text
        assert any("readiness" in rec.message for rec in caplog.records)  # the operator's log
