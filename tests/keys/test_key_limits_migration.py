"""0006_key_limits under a rolling upgrade: a replica of the release before it keeps serving on
the migrated database (its SELECTs, INSERTs and UPDATEs name only the columns it knows), and the
new code reads every row made before as a key without limits, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from farebox.db.database import Database
from farebox.db.migrate import alembic_config, upgrade_to_head
from farebox.db.schema import api_keys
from farebox.keys.secrets import KeyCipher, hash_key, key_hint, new_api_key, new_key_id
from farebox.keys.store import KeyStore
from farebox.ledger import ops
from farebox.ledger.types import GRANTS, Code, Transfer
from farebox.sim.server import SimServer

from support import DB_KINDS, NANOS, TEST_SECRET, database_url, require_db, running_gateway
from support import test_catalog as catalog_for

T = TypeVar("T")
PREVIOUS_HEADS = ("0005_cashu", "0005_dashboard")
NEW_COLUMNS = {"rpm_limit", "tpm_limit", "allowed_models"}
# api_keys as the release before 0006 knew it: its statements name these columns and no others
old_keys = sa.table(
    "api_keys", *(sa.column(c.name) for c in api_keys.columns if c.name not in NEW_COLUMNS)
)


@pytest.fixture(params=DB_KINDS)
def previous_release_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the previous release's schema (both heads before 0006)."""
    require_db(request.param)
    with database_url(request.param, tmp_path) as url:
        db = Database(url, threads=1)
        cfg = alembic_config()
        with db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            for head in PREVIOUS_HEADS:
                command.upgrade(cfg, head)
            conn.commit()
        db.close()
        yield url


def old_insert_key(conn: Connection, account_id: str, name: str) -> str:
    """The previous release's insert_key: every column it knew, none of the new ones."""
    raw = new_api_key()
    now = time.time()
    conn.execute(
        sa.insert(old_keys).values(
            id=new_key_id(),
            account_id=account_id,
            name=name,
            key_hash=hash_key(raw),
            key_encrypted=KeyCipher(TEST_SECRET).encrypt(raw),
            key_hint=key_hint(raw),
            usage_limit=None,
            reset_period=None,
            period_generation=0,
            period_key="",
            period_posted=0,
            period_pending=0,
            total_posted=0,
            expire_at=None,
            created_at=now,
            updated_at=now,
            revoked_at=None,
        )
    )
    return raw


def old_account(conn: Connection) -> str:
    account_id = "acct_" + uuid.uuid4().hex[:20]
    ops.create_customer_account(conn, account_id)
    ops.transfer(conn, Transfer("grant." + uuid.uuid4().hex, GRANTS, account_id, NANOS, Code.GRANT))
    return account_id


def columns(conn: Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns("api_keys")}


def test_the_previous_release_keeps_working_on_the_migrated_database(
    previous_release_db: str,
) -> None:
    db = Database(previous_release_db, threads=4)
    try:
        assert not NEW_COLUMNS & db.read_sync(columns)
        account = db.write_sync(old_account)
        before_raw = db.write_sync(old_insert_key, account, "made-before")

        upgrade_to_head(db.engine)  # the new release migrates while the old one serves
        assert db.read_sync(columns) >= NEW_COLUMNS

        # the old release, on the migrated schema: its INSERT, SELECT and UPDATE statements
        during_raw = db.write_sync(old_insert_key, account, "made-during")

        def old_reads(conn: Connection) -> list[tuple[str, float | None]]:
            rows = conn.execute(
                sa.select(old_keys)
                .where(old_keys.c.account_id == account)
                .order_by(old_keys.c.created_at)
            ).fetchall()
            return [(r.name, r.revoked_at) for r in rows]

        assert db.read_sync(old_reads) == [("made-before", None), ("made-during", None)]

        def old_revoke(conn: Connection) -> None:
            conn.execute(
                sa.update(old_keys)
                .where(old_keys.c.key_hash == hash_key(during_raw))
                .values(revoked_at=time.time(), updated_at=time.time())
            )

        db.write_sync(old_revoke)

        # the new release on the same rows: NULL is "no limit" and "every model"
        store = KeyStore(db, KeyCipher(TEST_SECRET), cache_ttl_s=0)
        for raw in (before_raw, during_raw):
            key = db.read_sync(
                lambda conn, r=raw: conn.execute(
                    sa.select(api_keys).where(api_keys.c.key_hash == hash_key(r))
                ).one()
            )
            assert (key.rpm_limit, key.tpm_limit, key.allowed_models) == (None, None, None)
        found = _run(store.find(before_raw))
        assert found is not None and not found.restricted
        limited, _ = _run(
            store.create(
                account, "made-after", None, None, None, rpm_limit=5, allowed_models=("test-*",)
            )
        )
        assert limited.restricted and limited.allowed_models == ("test-*",)
        # ...which the old release still lists, without the columns it does not know
        names = [name for name, _ in db.read_sync(old_reads)]
        assert names == ["made-before", "made-during", "made-after"]
    finally:
        db.close()


def test_the_new_release_serves_keys_made_before_it(
    previous_release_db: str, sim: SimServer
) -> None:
    db = Database(previous_release_db, threads=1)
    try:
        account = db.write_sync(old_account)
        raw = db.write_sync(old_insert_key, account, "made-before")
    finally:
        db.close()
    with running_gateway(previous_release_db, catalog_for(sim.url), secret_key=TEST_SECRET) as gw:
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            r = c.post(
                "/v1/chat/completions",
                json={
                    "model": "test-model",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 5,
                },
                headers={"Authorization": f"Bearer {raw}"},
            )
            assert r.status_code == 200, r.text
        assert gw.check().problems == []


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
