"""Upgrading a database made by the old schema (credit_id as the account id, the instance secret
in `meta`): every account gets a public id, every table follows, only hashes of the credit_ids
stay, the secret moves out of the database, and everything made before keeps working."""

from __future__ import annotations

import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Connection, MetaData, insert, select

from farebox.app import create_app
from farebox.cli import main as cli
from farebox.db.database import Database
from farebox.db.migrate import alembic_config
from farebox.db.schema import media_objects, meta, nwc_attempts, operator_losses, video_jobs
from farebox.keys.instance_secret import SecretSetupError, secret_file_for
from farebox.keys.secrets import KeyCipher
from farebox.keys.store import insert_key
from farebox.ledger import ops, tick
from farebox.ledger.sweep import encode_recovery
from farebox.ledger.types import GRANTS, Code, HoldRequest, QueryRecord, Settlement, Transfer
from farebox.media.signing import MediaSigner
from farebox.nwc import store as nwc_store
from farebox.payments import invoices
from farebox.settings import Settings
from farebox.sim.server import SimServer

from support import (
    NANOS,
    Gateway,
    check_ledger_at,
    fresh_pg_database,
    require_db,
    running_gateway,
    wait_until,
)
from support import (
    test_catalog as catalog_for,
)

NEW_REVISION = "0004_credentials"
LEGACY_SECRET = "legacy-instance-secret-" + "q" * 20
NWC_URI = (
    "nostr+walletconnect://" + "ab" * 32 + "?relay=wss://relay.example.com&secret=" + "cd" * 32
)
MEDIA_BYTES = b"\x89PNG old generation"
# video_jobs as the old code wrote it (later revisions add columns with defaults)
old_video_jobs = sa.table(
    "video_jobs", *(sa.column(c.name) for c in video_jobs.columns if c.name != "query_source")
)


@dataclass
class OldWorld:
    """What the old code had made: credit_ids were the account ids."""

    credit_a: str = field(default_factory=lambda: str(uuid.uuid4()))
    credit_b: str = field(default_factory=lambda: str(uuid.uuid4()))
    keys: dict[str, str] = field(default_factory=dict)  # raw key -> its credit_id
    crowd: list[str] = field(default_factory=list)  # more accounts' credit_ids (pages of them)
    media_url: str = ""
    spent_a: int = 0
    recorded_b: int = 0


def old_schema(url: str) -> Database:
    """A database at every revision but this one (and any built on it): the schema before."""
    db = Database(url, threads=2)
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    # Every revision that does not build on this one; later revisions may merge heads (such
    # as 0005_dashboard), so the heads alone would miss some of them.
    lineage = {
        r.revision: {x.revision for x in script.iterate_revisions(r.revision, "base")}
        for r in script.walk_revisions()
    }
    older = {rev for rev, seen in lineage.items() if NEW_REVISION not in seen}
    below = set().union(*(lineage[rev] - {rev} for rev in older))
    before = sorted(older - below)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        for target in before:
            command.upgrade(cfg, target)
        conn.commit()
    return db


def populate_the_old_way(db: Database, media_dir: Path, crowd: int = 0) -> OldWorld:
    world = OldWorld(crowd=[str(uuid.uuid4()) for _ in range(crowd)])
    cipher = KeyCipher(LEGACY_SECRET)
    now = time.time()

    def accounts_and_keys(conn: Connection) -> None:
        conn.execute(insert(meta).values(key="secret_key", value=LEGACY_SECRET))
        for credit in (world.credit_a, world.credit_b):
            ops.create_customer_account(conn, credit)
            ops.transfer(
                conn, Transfer("grant." + uuid.uuid4().hex, GRANTS, credit, 5 * NANOS, Code.GRANT)
            )
            _key, raw = insert_key(conn, cipher, credit, "default", None, None, None)
            world.keys[raw] = credit
        _key, raw = insert_key(conn, cipher, world.credit_a, "limited", NANOS, None, None)
        world.keys[raw] = world.credit_a
        for credit in world.crowd:
            ops.create_customer_account(conn, credit)
            insert_key(conn, cipher, credit, "default", None, None, None)

    db.write_sync(accounts_and_keys)
    # A settled request of A (history row, posted transfer) and an open hold of B with usage
    # recorded on it, as a process that died mid-stream leaves it.
    query = QueryRecord(model="test-model", input_count=10, output_count=20)
    hold_a = HoldRequest(
        "h.a." + uuid.uuid4().hex, "req-a", 0, world.credit_a, NANOS, NANOS, now + 60
    )
    hold_b = HoldRequest(
        "h.b." + uuid.uuid4().hex, "req-b", 0, world.credit_b, NANOS, NANOS, now + 2
    )
    db.transact_sync(tick.tick_step_by_step, [], [hold_a, hold_b], now)
    world.spent_a = 250_000
    settle_a = Settlement(
        "req-a", world.credit_a, None, ((hold_a.transfer_id, NANOS),), world.spent_a, query
    )
    db.transact_sync(tick.tick_step_by_step, [settle_a], [], now)
    world.recorded_b = 120_000
    db.transact_sync(
        ops.renew_holds, [ops.Renewal("req-b", now + 2, world.recorded_b, encode_recovery(query))]
    )

    def the_rest(conn: Connection) -> None:
        invoices.insert_invoice(conn, invoice_for(world.credit_a, now))
        nwc_store.save_connection(
            conn,
            world.credit_a,
            "ab" * 32,
            ("wss://relay.example.com",),
            cipher.encrypt(NWC_URI),
            NANOS,
            10 * NANOS,
        )
        nwc_store.start_attempt(conn, "att_" + uuid.uuid4().hex[:12], world.credit_a, now)
        conn.execute(
            insert(media_objects).values(
                gen_id="gen_old",
                n=0,
                account_id=world.credit_a,
                content_type="image/png",
                storage_key="ld/gen_old/0.png",
                size=len(MEDIA_BYTES),
                created_at=now,
            )
        )
        conn.execute(
            insert(old_video_jobs).values(
                id="gen_oldvideo",
                account_id=world.credit_a,
                key_id=None,
                model="kling",
                status="completed",
                provider=None,
                upstream=None,
                request="{}",
                request_id="req-v",
                holds="[]",
                estimated=0,
                cost=0,
                seconds=5,
                error=None,
                content_type=None,
                attempts=1,
                next_poll_at=now,
                lease_until=0,
                created_at=now,
                finished_at=now,
            )
        )

    db.write_sync(the_rest)
    loss = {"request_id": "req-lost", "account_id": world.credit_a, "key_id": None}
    loss |= {"model": "test-model", "created_at": now, "input_tokens": 1, "output_tokens": 9}
    loss |= {"sale_value": 20, "charged": 10, "unbilled": 10}
    db.write_sync(lambda conn: conn.execute(insert(operator_losses).values(**loss)))
    (media_dir / "ld" / "gen_old").mkdir(parents=True)
    (media_dir / "ld" / "gen_old" / "0.png").write_bytes(MEDIA_BYTES)
    world.media_url = MediaSigner(LEGACY_SECRET).path("gen_old", 0)
    return world


def invoice_for(account_id: str, now: float) -> invoices.TopupInvoice:
    return invoices.TopupInvoice(
        id="inv_old", account_id=account_id, backend="btcpay", backend_invoice_id="bp_old",
        method="btc-lightning", currency="USD", amount="1", sats=1000, usd_nanos=NANOS,
        btc_usd="100000", bolt11=None, address=None, payment_uri=None, amount_due=None,
        checkout_url=None, status="paid", overpaid=False, source="api", transfer_id=None,
        created_at=now, expires_at=now + 900, updated_at=now, checked_at=None, paid_at=now,
    )  # fmt: skip


def every_text_value(db: Database) -> list[str]:
    """Every value of every row of every table in the database, as text."""

    def read(conn: Connection) -> list[str]:
        tables = MetaData()
        tables.reflect(conn)
        return [str(v) for t in tables.sorted_tables for r in conn.execute(select(t)) for v in r]

    return db.read_sync(read)


def account_of(c: httpx.Client, credit_id: str) -> dict[str, Any]:
    r = c.post("/credits/balance", json={"credit_id": credit_id})
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_everything_made_before_still_works(gw: Gateway, world: OldWorld) -> None:
    with gw.client() as c:
        a, b = account_of(c, world.credit_a), account_of(c, world.credit_b)
        assert a["account_id"].startswith("acct_") and b["account_id"].startswith("acct_")
        assert a["balance"] == (5 * NANOS - world.spent_a) / NANOS
        # keys made before the upgrade: they authenticate, and show_key reveals them
        for credit in (world.credit_a, world.credit_b):
            r = c.get("/keys", params={"show_key": "true"}, headers={"x-credit-id": credit})
            assert r.status_code == 200, r.text
            shown = {k["api_key"] for k in r.json()["data"]}
            assert shown == {raw for raw, owner in world.keys.items() if owner == credit}
        for raw, credit in world.keys.items():
            r = c.post("/credits/balance", headers={"Authorization": f"Bearer {raw}"})
            assert r.status_code == 200, r.text
            assert r.json()["account_id"] == account_of(c, credit)["account_id"]
        # history, top-ups, NWC and media still belong to A
        r = c.get("/queries/history", headers={"x-credit-id": world.credit_a})
        assert [row["price_in_usd"] for row in r.json()["data"]] == [world.spent_a / NANOS]
        key_a = next(raw for raw, owner in world.keys.items() if owner == world.credit_a)
        r = c.get("/topup/status/inv_old", headers={"Authorization": f"Bearer {key_a}"})
        assert r.status_code == 200 and r.json()["status"] == "paid", r.text
        r = c.get("/nwc-auto-topup", headers={"x-credit-id": world.credit_a})
        assert r.status_code == 200 and r.json()["connected"] is True, r.text
        media = c.get(world.media_url)
        assert media.status_code == 200 and media.content == MEDIA_BYTES, media.text
        chat = c.post(
            "/v1/chat/completions",
            json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key_a}"},
        )
        assert chat.status_code == 200, chat.text

    connection = gw.services.db.read_sync(nwc_store.get_connection, a["account_id"])
    assert gw.services.nwc.cipher.decrypt(connection.uri_encrypted) == NWC_URI
    jobs = gw.services.db.read_sync(
        lambda conn: conn.execute(select(video_jobs.c.account_id)).scalars().all()
    )
    attempts = gw.services.db.read_sync(
        lambda conn: conn.execute(select(nwc_attempts.c.account_id)).scalars().all()
    )
    losses = gw.services.db.read_sync(
        lambda conn: conn.execute(select(operator_losses.c.account_id)).scalars().all()
    )
    assert jobs == attempts == losses == [a["account_id"]]
    # B's hold, open across the upgrade, is swept: its recorded usage posted, the rest voided
    assert wait_until(lambda: gw.nanos(world.credit_b)[1] == 0, timeout=15)
    assert gw.nanos(world.credit_b) == (5 * NANOS - world.recorded_b, 0)
    assert gw.history_total_nanos(world.credit_b) == world.recorded_b
    report = check_ledger_at(gw.settings.database_url)
    assert report.ok, report.problems


def assert_no_secret_left_in(db: Database, world: OldWorld, *secrets: str) -> None:
    values = every_text_value(db)
    for secret in (world.credit_a, world.credit_b, LEGACY_SECRET, *secrets):
        assert not [v for v in values if secret in v], "a secret is still in the database"


def database_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("farebox.db*")))


def test_sqlite_upgrade_keeps_every_account_and_moves_the_secret_into_a_file(
    sim: SimServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    old = old_schema(url)
    world = populate_the_old_way(old, tmp_path / "media", crowd=300)
    old.close()
    secrets = [world.credit_a, world.credit_b, LEGACY_SECRET, *world.crowd]
    assert all(s.encode() in database_bytes(tmp_path) for s in secrets[:3])  # as they were
    with running_gateway(
        url, catalog_for(sim.url), extra_env={"FAREBOX_MEDIA_DIR": str(tmp_path / "media")}
    ) as gw:
        # The files of the live database, copied now: no credit_id, no secret, not even in
        # free pages or the WAL (the first start rewrote the file).
        live = database_bytes(tmp_path)
        assert [s for s in secrets if s.encode() in live] == []
        secret_file = secret_file_for(url)
        assert secret_file == tmp_path / "farebox-secret.key"
        assert secret_file.read_text().strip() == LEGACY_SECRET  # moved, not regenerated
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert_everything_made_before_still_works(gw, world)
        assert_no_secret_left_in(gw.services.db, world)
        with gw.client() as c:
            crowd = [account_of(c, credit)["account_id"] for credit in world.crowd[:5]]
        assert all(a.startswith("acct_") for a in crowd) and len(set(crowd)) == 5
    after = database_bytes(tmp_path)
    assert [s for s in secrets + list(world.keys) if s.encode() in after] == []
    # A second start finds the secret in its file and the database answering to it.
    with (
        running_gateway(
            url, catalog_for(sim.url), extra_env={"FAREBOX_MEDIA_DIR": str(tmp_path / "media")}
        ) as gw,
        gw.client() as c,
    ):
        assert account_of(c, world.credit_a)["balance"] > 0


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_db("postgresql")
    with fresh_pg_database() as url:
        yield url


def test_postgresql_upgrade_refuses_to_start_until_the_secret_is_exported(
    sim: SimServer, tmp_path: Path, pg_url: str
) -> None:
    db_url = pg_url
    old = old_schema(db_url)
    world = populate_the_old_way(old, tmp_path / "media")
    old.close()
    catalog = catalog_for(sim.url)
    env = {"FAREBOX_MEDIA_DIR": str(tmp_path / "media")}
    with pytest.raises(SecretSetupError, match="farebox secret export"):
        create_app(Settings(database_url=db_url), catalog)
    exported = tmp_path / "instance.secret"
    result = CliRunner().invoke(
        cli, ["secret", "export", "--file", str(exported)], env={"FAREBOX_DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    assert exported.read_text().strip() == LEGACY_SECRET
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    again = CliRunner().invoke(
        cli,
        ["secret", "export", "--file", str(tmp_path / "x")],
        env={"FAREBOX_DATABASE_URL": db_url},
    )
    assert again.exit_code != 0 and "nothing to export" in again.output
    with running_gateway(
        db_url, catalog, secret_key=exported.read_text().strip(), extra_env=env
    ) as gw:
        assert_everything_made_before_still_works(gw, world)
        assert_no_secret_left_in(gw.services.db, world, *world.keys)


def test_upgrade_with_the_same_secret_configured_just_forgets_the_copy_in_the_database(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    old = old_schema(db_url)
    world = populate_the_old_way(old, tmp_path / "media")
    old.close()
    env = {"FAREBOX_MEDIA_DIR": str(tmp_path / "media")}
    catalog = catalog_for(sim.url)
    with pytest.raises(SecretSetupError, match="differs"):
        create_app(Settings(database_url=db_url, secret_key="another-" + "z" * 30), catalog)
    with running_gateway(db_url, catalog, secret_key=LEGACY_SECRET, extra_env=env) as gw:
        assert_everything_made_before_still_works(gw, world)
        assert_no_secret_left_in(gw.services.db, world)
