"""A consistent copy of a live SQLite database, and what to say about PostgreSQL.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in one step, inside
one read transaction: in WAL mode that is a snapshot of the last committed state, taken while
gateways keep writing (a writer never waits for it, and it never sees half a transfer). Copying
in several steps would let other processes' commits restart it, possibly for ever under load.
The copy is written beside the target, checked with `PRAGMA quick_check`, synced, then renamed,
so a target that exists is always a whole database.

PostgreSQL is backed up with its own tools (`pg_dump`, or base backups and WAL archiving);
farebox prints the command rather than wrapping it.

Either way the instance secret (FAREBOX_SECRET_KEY, or the `<name>-secret.key` file beside a
SQLite database) is not in the data: it is kept, and backed up, apart from it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from farebox.db.database import normalize_url
from farebox.keys.instance_secret import secret_file_for


class BackupError(Exception):
    """The backup could not be made; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    pages: int


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    """Copy the live database `source` to `target` (which must not exist) consistently."""
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    if target.exists():
        raise BackupError(f"{target} exists: name a new file")
    if not target.parent.is_dir():
        raise BackupError(f"no folder {target.parent} to write the copy in")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=-1)  # one step: one snapshot (see the module's docstring)
            verdict = dst.execute("PRAGMA quick_check").fetchone()
            if verdict is None or verdict[0] != "ok":
                raise BackupError(f"the copy failed its integrity check: {verdict}")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"copying {source} failed: {exc}") from exc
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)
    return BackupResult(target, target.stat().st_size, pages)


def postgres_practice(database_url: str, target: str) -> str:
    """What to run instead on PostgreSQL (the URL's password is not repeated)."""
    url = make_url(normalize_url(database_url)).set(drivername="postgresql")
    shown = url._replace(password=None).render_as_string(hide_password=False)
    return (
        "farebox does not copy PostgreSQL itself: use PostgreSQL's tools, which take a "
        "consistent snapshot while the gateways keep serving:\n\n"
        f"  pg_dump --format=custom --file {target} '{shown}'\n\n"
        "(its password from ~/.pgpass or PGPASSWORD; restore with pg_restore into an empty database; for point-in-time recovery use base "
        "backups and WAL archiving, e.g. pgBackRest). See docs/operators/backups.md."
    )


def secret_reminder(database_url: str, secret_from_env: bool) -> str:
    """Where the instance secret lives, and that it is backed up apart from the data."""
    path = secret_file_for(database_url)
    if secret_from_env or path is None:
        where = "FAREBOX_SECRET_KEY (or the file FAREBOX_SECRET_KEY_FILE names)"
    else:
        where = str(path)
    return (
        f"The instance secret is not in this backup: it is {where}. Back it up apart from the "
        "data (without it the API keys and NWC connections in a restored database cannot be "
        "read; with it, anyone holding the data can). `farebox secret export` moves a secret an "
        "older farebox kept in the database out of it."
    )
