"""The instance secret lives outside the database: a file next to a SQLite database (made at first
start, mode 0600), or FAREBOX_SECRET_KEY(_FILE), required on PostgreSQL and with --workers > 1;
the database keeps only a fingerprint; `farebox secret rotate` re-encrypts under a new one."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from farebox.app import prepare_database
from farebox.cli import main as cli
from farebox.db.database import Database
from farebox.keys.instance_secret import (
    SecretSetupError,
    fingerprint,
    instance_secret,
    secret_file_for,
    set_fingerprint,
)
from farebox.keys.secrets import KeyCipher
from farebox.nwc import store as nwc_store
from farebox.settings import Settings
from farebox.sim.server import SimServer

from support import NANOS, Gateway, free_port, running_gateway
from support import test_catalog as catalog_for

NWC_URI = (
    "nostr+walletconnect://" + "ab" * 32 + "?relay=wss://relay.example.com&secret=" + "ef" * 32
)


def resolve(url: str, **settings: object) -> str:
    """The secret a process starting on `url` with these settings would use (or the error)."""
    db = prepare_database(Settings(database_url=url, **settings))  # type: ignore[arg-type]
    try:
        return instance_secret(Settings(database_url=url, **settings), db)  # type: ignore[arg-type]
    finally:
        db.close()


def shown_keys(gw: Gateway, credit_id: str) -> set[str]:
    with gw.client() as c:
        r = c.get("/keys", params={"show_key": "true"}, headers={"x-credit-id": credit_id})
        assert r.status_code == 200, r.text
        return {k["api_key"] for k in r.json()["data"]}


def connect_wallet(gw: Gateway, credit_id: str) -> None:
    """An NWC connection row, its URI encrypted as the auto top-up service stores it."""
    account_id = gw.account_id(credit_id)
    encrypted = gw.services.nwc.cipher.encrypt(NWC_URI)
    gw.services.db.write_sync(
        nwc_store.save_connection,
        account_id,
        "ab" * 32,
        ("wss://relay.example.com",),
        encrypted,
        NANOS,
        NANOS,
    )


def stored_nwc_uri(db: Database, account_id: str, secret: str) -> str:
    connection = db.read_sync(nwc_store.get_connection, account_id)
    return KeyCipher(secret).decrypt(connection.uri_encrypted)


def test_sqlite_keeps_its_secret_in_an_owner_only_file_made_at_first_start(
    sim: SimServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    with running_gateway(url, catalog_for(sim.url)) as gw:
        credit_id, key = gw.create_account(1)
        image_path = gw.services.media.media.signer.path("gen_x", 0, now=1_900_000_000)
    path = tmp_path / "farebox-secret.key"
    assert secret_file_for(url) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert len(secret) >= 40
    # The database holds no secret, only its fingerprint.
    with sqlite3.connect(tmp_path / "farebox.db") as conn:
        dump = "\n".join(conn.iterdump())
        assert dict(conn.execute("SELECT key, value FROM meta").fetchall()) == {
            "secret_check": fingerprint(secret)
        }
    assert secret not in dump
    # A second start reuses the file: keys still reveal, signed URLs still verify.
    with running_gateway(url, catalog_for(sim.url)) as gw:
        assert shown_keys(gw, credit_id) == {key}
        assert gw.services.media.media.signer.path("gen_x", 0, now=1_900_000_000) == image_path
    assert path.read_text().strip() == secret


def test_a_copy_of_the_database_alone_cannot_start_nor_decrypt_keys(
    sim: SimServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    with running_gateway(url, catalog_for(sim.url)) as gw:
        credit_id, key = gw.create_account(1)
    secret = (tmp_path / "farebox-secret.key").read_text().strip()
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    for part in tmp_path.glob("farebox.db*"):
        shutil.copy(part, stolen / part.name)
    copy_url = f"sqlite:///{stolen / 'farebox.db'}"
    with pytest.raises(SecretSetupError, match="not the one this database was set up with"):
        resolve(copy_url)
    guessed = (stolen / "farebox-secret.key").read_text().strip()  # what that start made up
    with sqlite3.connect(stolen / "farebox.db") as conn:
        tokens = [row[0] for row in conn.execute("SELECT key_encrypted FROM api_keys")]
        values = "\n".join(conn.iterdump())
    assert tokens and credit_id not in values and key not in values and secret not in values
    for token in tokens:
        with pytest.raises(ValueError):
            KeyCipher(guessed).decrypt(token)


def test_postgresql_and_several_workers_need_a_configured_secret(
    tmp_path: Path, db_kind: str, db_url: str
) -> None:
    if db_kind == "postgresql":
        with pytest.raises(SecretSetupError, match="PostgreSQL needs FAREBOX_SECRET_KEY"):
            resolve(db_url)
        result = CliRunner().invoke(
            cli, ["admin", "create-account"], env={"FAREBOX_DATABASE_URL": db_url}
        )
        assert result.exit_code == 1
        assert result.output.strip().count("\n") == 0  # one line, no traceback
        assert "FAREBOX_SECRET_KEY" in result.output
    with pytest.raises(SecretSetupError, match="--workers above 1"):
        resolve(db_url, workers=2)
    # A free port of its own: `--workers` binds before it reads the secret, and the sqlite and
    # postgresql runs of this test may run at once (port 1 for both raced, as root).
    port = str(free_port())
    result = CliRunner().invoke(
        cli, ["serve", "--workers", "2", "--port", port], env={"FAREBOX_DATABASE_URL": db_url}
    )
    assert result.exit_code == 1 and "--workers above 1 needs FAREBOX_SECRET_KEY" in result.output
    assert (
        resolve(db_url, workers=2, secret_key="configured-" + "k" * 30) == "configured-" + "k" * 30
    )
    assert not (tmp_path / "farebox-secret.key").exists()  # a configured secret needs no file


def test_a_different_secret_is_refused_at_start(tmp_path: Path, db_url: str) -> None:
    first = "first-secret-" + "a" * 30
    assert resolve(db_url, secret_key=first) == first
    with pytest.raises(SecretSetupError, match="not the one this database was set up with"):
        resolve(db_url, secret_key="second-secret-" + "b" * 30)
    assert resolve(db_url, secret_key=first) == first


def test_secret_key_file_setting(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("from-a-file-" + "f" * 30 + "\n")
    assert (
        Settings.from_env({"FAREBOX_SECRET_KEY_FILE": str(path)}).secret_key
        == "from-a-file-" + "f" * 30
    )
    assert Settings.from_env({"FAREBOX_SECRET_KEY": "direct"}).secret_key == "direct"
    assert Settings.from_env({}).secret_key is None
    for env, problem in (
        ({"FAREBOX_SECRET_KEY": "x", "FAREBOX_SECRET_KEY_FILE": str(path)}, "not both"),
        ({"FAREBOX_SECRET_KEY_FILE": str(tmp_path / "missing")}, "cannot be read"),
        ({"FAREBOX_SECRET_KEY_FILE": str(tmp_path)}, "cannot be read"),
    ):
        with pytest.raises(ValueError, match=problem):
            Settings.from_env(env)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        Settings.from_env({"FAREBOX_SECRET_KEY_FILE": str(tmp_path / "empty")})


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    resolve(url)
    path = tmp_path / "farebox-secret.key"
    path.chmod(0o644)
    with pytest.raises(SecretSetupError, match="chmod 600"):
        resolve(url)
    path.chmod(0o600)
    resolve(url)


def test_rotate_re_encrypts_keys_and_nwc_under_a_new_secret_file(
    sim: SimServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    with running_gateway(url, catalog_for(sim.url)) as gw:
        credit_id, key = gw.create_account(1)
        connect_wallet(gw, credit_id)
        account_id = gw.account_id(credit_id)
    path = tmp_path / "farebox-secret.key"
    old = path.read_text().strip()
    result = CliRunner().invoke(cli, ["secret", "rotate"], env={"FAREBOX_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 API keys and 1 NWC connections" in result.output
    new = path.read_text().strip()
    assert new != old and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name(path.name + ".new").exists()
    with running_gateway(url, catalog_for(sim.url)) as gw:
        assert shown_keys(gw, credit_id) == {key}
        assert stored_nwc_uri(gw.services.db, account_id, new) == NWC_URI
        with gw.client() as c:
            r = c.post("/credits/balance", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
    with pytest.raises(SecretSetupError, match="not the one"):
        resolve(url, secret_key=old)


def test_rotate_with_a_configured_secret_writes_the_new_one_where_told(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    old = "configured-old-" + "o" * 30
    with running_gateway(db_url, catalog_for(sim.url), secret_key=old) as gw:
        credit_id, key = gw.create_account(1)
        connect_wallet(gw, credit_id)
        account_id = gw.account_id(credit_id)
    env = {"FAREBOX_DATABASE_URL": db_url, "FAREBOX_SECRET_KEY": old}
    refused = CliRunner().invoke(cli, ["secret", "rotate"], env=env)
    assert refused.exit_code != 0 and "--new-file" in refused.output
    target = tmp_path / "next.secret"
    result = CliRunner().invoke(cli, ["secret", "rotate", "--new-file", str(target)], env=env)
    assert result.exit_code == 0, result.output
    assert f"FAREBOX_SECRET_KEY_FILE={target}" in result.output
    new = target.read_text().strip()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(SecretSetupError, match="not the one"):
        resolve(db_url, secret_key=old)
    with running_gateway(db_url, catalog_for(sim.url), secret_key=new) as gw:
        assert shown_keys(gw, credit_id) == {key}
        assert stored_nwc_uri(gw.services.db, account_id, new) == NWC_URI


def test_a_rotation_stopped_after_the_database_commit_is_finished_at_start(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    first = resolve(url)
    pending = tmp_path / "farebox-secret.key.new"
    pending.write_text("the-next-secret-" + "n" * 30)
    pending.chmod(0o600)
    # The database did not switch yet: the stale next secret is dropped.
    assert resolve(url) == first and not pending.exists()
    pending.write_text("the-next-secret-" + "n" * 30)
    pending.chmod(0o600)
    db = Database(url, threads=1)
    db.write_sync(set_fingerprint, fingerprint("the-next-secret-" + "n" * 30))
    db.close()
    # It did: the next secret takes the file's place.
    assert resolve(url) == "the-next-secret-" + "n" * 30 and not pending.exists()


@pytest.mark.slow  # runs `farebox serve --demo` as a process
def test_demo_starts_with_no_setup_and_its_key_works(tmp_path: Path) -> None:
    """`farebox serve --demo` in an empty folder: no secret to configure, a working key."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = ""
        assert proc.stdout is not None
        while "api_key:" not in banner:
            line = proc.stdout.readline()
            assert line, banner
            banner += line
        key = banner.split("api_key:")[1].split()[0]
        r = None
        for _ in range(100):
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/credits/balance",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=5,
                )
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert r is not None and r.status_code == 200, banner
        assert r.json()["balance"] == 5, r.text
        assert (tmp_path / "farebox-secret.key").exists()
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_key_whose_stored_copy_does_not_decrypt_is_listed_without_it(
    sim: SimServer, tmp_path: Path
) -> None:
    """show_key on a row written under another secret: 200, that key's api_key null (it still
    authenticates by its hash), the others shown; before, the whole listing was a 500."""
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    with running_gateway(url, catalog_for(sim.url)) as gw:
        credit_id, key = gw.create_account(1)
        with gw.client() as c:
            r = c.post("/keys", json={"name": "second"}, headers={"x-credit-id": credit_id})
            assert r.status_code == 201, r.text
            second = r.json()["data"]["api_key"]
        other = KeyCipher("another-secret").encrypt(key)
        with sqlite3.connect(tmp_path / "farebox.db") as conn:
            conn.execute("UPDATE api_keys SET key_encrypted = ? WHERE name != 'second'", (other,))
        with gw.client() as c:
            r = c.get("/keys", params={"show_key": "true"}, headers={"x-credit-id": credit_id})
            assert r.status_code == 200, r.text
            shown = {k["name"]: k["api_key"] for k in r.json()["data"]}
            assert shown["second"] == second
            assert [v for n, v in shown.items() if n != "second"] == [None]
            balance = c.post("/credits/balance", headers={"authorization": f"Bearer {key}"})
            assert balance.status_code == 200, balance.text
