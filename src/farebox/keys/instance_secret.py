"""The instance secret: where it lives, how a process finds it, and moving it out of the database.

The secret encrypts API keys and NWC connection strings at rest and signs media URLs, so it must
never sit beside what it protects: a copy of the database alone must not decrypt anything.

Where it comes from, in order:
1. `FAREBOX_SECRET_KEY` or `FAREBOX_SECRET_KEY_FILE` (settings.secret_key). Required on
   PostgreSQL and with `--workers` above 1, so every replica shares one secret.
2. Otherwise (one SQLite process, the zero-setup default) a file next to the database,
   `<name>-secret.key` for `<name>.db`, created with mode 0600 on first start and reused.

Older farebox kept the secret in the `meta` table. At start it is moved out, never regenerated:
on SQLite into that file; with a configured secret equal to it, simply deleted; otherwise the
process refuses to start and says how to export it (`farebox secret export`).

The database keeps only a fingerprint (an HMAC of a constant under the secret, `secret_check`):
a process given another secret refuses to start instead of writing keys nobody else can read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from farebox.db.database import Database, sqlite_path
from farebox.db.schema import meta
from farebox.settings import Settings

log = logging.getLogger("farebox.secret")

LEGACY_META_KEY = "secret_key"  # where farebox kept the secret before it moved out
CHECK_META_KEY = "secret_check"
FILE_SUFFIX = "-secret.key"
ROTATING_SUFFIX = ".new"  # the next secret, while `farebox secret rotate` runs


class SecretSetupError(ValueError):
    """The instance secret is missing or inconsistent; the message says what to do (one line)."""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(secret: str) -> str:
    return hmac.new(
        secret.encode(), b"farebox instance secret check v1", hashlib.sha256
    ).hexdigest()


def secret_file_for(database_url: str) -> Path | None:
    """The secret file of a SQLite database file; None for PostgreSQL or an in-memory database."""
    path = sqlite_path(database_url)
    return None if path is None else path.with_name(path.stem + FILE_SUFFIX)


# ---------------------------------------------------------------------------------------------
# The meta rows


def meta_value(conn: Connection, key: str) -> str | None:
    row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
    return None if row is None else str(row[0])


def forget_legacy_secret(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete = ON")  # zero the freed bytes too
    conn.execute(delete(meta).where(meta.c.key == LEGACY_META_KEY))


def record_fingerprint(conn: Connection, check: str) -> str:
    """Store `check` unless a fingerprint is there already; return the stored one."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        dialect_insert(meta).values(key=CHECK_META_KEY, value=check).on_conflict_do_nothing()
    )
    stored = meta_value(conn, CHECK_META_KEY)
    assert stored is not None
    return stored


def set_fingerprint(conn: Connection, check: str) -> None:
    conn.execute(delete(meta).where(meta.c.key == CHECK_META_KEY))
    conn.execute(meta.insert().values(key=CHECK_META_KEY, value=check))


# ---------------------------------------------------------------------------------------------
# The secret file


def read_secret_file(path: Path) -> str | None:
    """The secret in `path`, or None when there is no such file. Refuses a file that others may
    read (it would let them decrypt every key) and an empty one."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretSetupError(
            f"the instance secret file {path} can be read by other users: run chmod 600 {path}"
        )
    value = path.read_text().strip()
    if not value:
        raise SecretSetupError(f"the instance secret file {path} is empty")
    return value


def write_secret_file(path: Path, secret: str) -> str:
    """Create `path` holding `secret` (mode 0600, written in full before it appears). If another
    process created it first, its secret wins. Returns the secret the file holds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secret + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and fails if the file exists: no half-written secret
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    _sync_directory(path.parent)
    found = read_secret_file(path)
    assert found is not None
    return found


def replace_secret_file(source: Path, path: Path) -> None:
    os.replace(source, path)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# Finding the secret at start


def instance_secret(settings: Settings, db: Database) -> str:
    """The instance secret for this process (see the module docstring); moves a secret found in
    the database out of it first. Raises SecretSetupError with what to do."""
    if settings.secret_key is None and settings.workers > 1:
        raise SecretSetupError(
            "--workers above 1 needs FAREBOX_SECRET_KEY or FAREBOX_SECRET_KEY_FILE, so every "
            "worker shares one instance secret"
        )
    legacy = db.read_sync(meta_value, LEGACY_META_KEY)
    if settings.secret_key is not None:
        secret, where = settings.secret_key, "FAREBOX_SECRET_KEY (or FAREBOX_SECRET_KEY_FILE)"
    else:
        path = _unconfigured_secret_file(settings, db, legacy is not None)
        secret, where = _file_secret(path, db, legacy), str(path or "memory")
    if legacy is not None:
        if legacy != secret:
            raise SecretSetupError(
                f"the database holds an instance secret from an older farebox that differs from "
                f"{where}: run `farebox secret export --file PATH` to move it out of the "
                "database, then start with the secret your API keys were made with"
            )
        db.write_sync(forget_legacy_secret)
        db.scrub()
        log.warning("moved the instance secret out of the database (now in %s)", where)
    stored = db.write_sync(record_fingerprint, fingerprint(secret))
    if not hmac.compare_digest(stored, fingerprint(secret)):
        raise SecretSetupError(
            f"the instance secret in {where} is not the one this database was set up with: "
            "start with the original (restore it from your backup), or stored API keys, NWC "
            "connections and media URLs would not work"
        )
    return secret


def _unconfigured_secret_file(settings: Settings, db: Database, has_legacy: bool) -> Path | None:
    if not db.is_sqlite:
        hint = (
            " (this database still holds the secret of an older farebox: run "
            "`farebox secret export --file PATH`, then set FAREBOX_SECRET_KEY_FILE=PATH)"
            if has_legacy
            else " (for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
        raise SecretSetupError(
            "PostgreSQL needs FAREBOX_SECRET_KEY or FAREBOX_SECRET_KEY_FILE, the same on every "
            "replica" + hint
        )
    return secret_file_for(settings.database_url)


def _file_secret(path: Path | None, db: Database, legacy: str | None) -> str:
    if path is None:  # an in-memory database lives as long as the process: so may its secret
        return legacy or new_secret()
    finish_rotation(path, db)
    existing = read_secret_file(path)
    if existing is not None:
        return existing
    return write_secret_file(path, legacy or new_secret())


def finish_rotation(path: Path, db: Database) -> None:
    """Complete or drop a rotation that stopped between the database and the file: the next
    secret (`<file>.new`) replaces the file if the database already answers to it."""
    pending = path.with_name(path.name + ROTATING_SUFFIX)
    if not pending.exists():
        return
    candidate = read_secret_file(pending)
    stored = db.read_sync(meta_value, CHECK_META_KEY)
    if candidate is not None and stored == fingerprint(candidate):
        replace_secret_file(pending, path)
    else:
        pending.unlink()
