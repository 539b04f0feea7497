"""Run Alembic migrations to head; safe when several processes start at once.

Each domain adds its own revisions; independent branches (all with down_revision "0001") are
fine: every head is applied.

A database already at head (every start but the first after an upgrade) is recognised without
Alembic: the heads are read from the revision files (their `revision` and `down_revision`
assignments) and compared with `alembic_version`. Alembic and Mako (about 10 MB resident) are
imported only when there is something to migrate, so a serving process does not carry them.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from farebox.db.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x46415245  # "FARE"


def alembic_config() -> Config:
    config_module = importlib.import_module("alembic.config")  # only when migrating
    cfg: Config = config_module.Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@cache
def heads_on_disk() -> frozenset[str]:
    """The revisions no other revision builds on."""
    revisions: set[str] = set()
    built_on: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if not isinstance(target, ast.Name) or not isinstance(node, ast.Assign):
                continue
            if target.id == "revision":
                revisions.add(ast.literal_eval(node.value))
            elif target.id == "down_revision":
                down = ast.literal_eval(node.value)
                built_on.update([down] if isinstance(down, str) else down or ())
    return frozenset(revisions - built_on)


def at_head(engine: Engine) -> bool:
    """Whether the database's recorded revisions are exactly the heads on disk."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no alembic_version table: a new database
        return False
    return {str(row[0]) for row in rows} == heads_on_disk()


def upgrade_to_head(engine: Engine) -> None:
    if at_head(engine):
        return
    command = importlib.import_module("alembic.command")  # only when migrating
    cfg = alembic_config()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                conn.commit()


def upgrade_in_child(database_url: str) -> None:
    """Bring the schema to head in a short-lived child process when it is not there yet, so
    that a serving process (`farebox serve`) never imports Alembic. Raises RuntimeError with the
    child's output when the migration fails."""
    database = Database(database_url, threads=1)
    try:
        if at_head(database.engine):
            return
    finally:
        database.close()
    done = subprocess.run(
        [sys.executable, "-m", "farebox.db.migrate"],
        env={**os.environ, "FAREBOX_DATABASE_URL": database_url},  # not argv: ps shows argv
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrating the database failed:\n{done.stdout}{done.stderr}")


def _main() -> None:
    database = Database(os.environ["FAREBOX_DATABASE_URL"], threads=1)
    try:
        upgrade_to_head(database.engine)
    finally:
        database.close()


if __name__ == "__main__":
    _main()
