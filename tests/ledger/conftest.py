"""Fixtures for the ledger tests: a migrated database of each kind, real SQLite and a fresh real
PostgreSQL database, created once per test module and emptied before every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_support import open_db, wipe

from farebox.db.database import Database

from support import database_url, require_db

DB_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=DB_KINDS)
def ledger_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    require_db(request.param)
    tmp: Path = tmp_path_factory.mktemp("ledger")
    with database_url(request.param, tmp) as url:
        open_db(url, threads=1).close()  # migrate once
        yield url


@pytest.fixture(scope="module")
def module_db(ledger_url: str) -> Iterator[Database]:
    database = open_db(ledger_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def db(module_db: Database) -> Database:
    """The module's database, empty (system accounts at zero)."""
    module_db.write_sync(wipe)
    return module_db
