"""`farebox db backup`: a consistent copy of a live SQLite database (db/backup.py)."""

from __future__ import annotations

from pathlib import Path

import click

from farebox.db.backup import (
    BackupError,
    backup_sqlite,
    postgres_practice,
    secret_reminder,
)
from farebox.db.database import sqlite_path
from farebox.settings import Settings


@click.group()
def db_command() -> None:
    """The database: backups."""


@db_command.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--database-url", default=None, help="Overrides FAREBOX_DATABASE_URL.")
def backup(path: Path, database_url: str | None) -> None:
    """Copy the SQLite database to PATH (a new file), consistently, while gateways serve.

    Uses SQLite's online backup API: a snapshot of the last committed state, checked before it
    is renamed into place. On PostgreSQL, prints the pg_dump command to use instead (exit 1).
    The instance secret is not in the copy: back it up apart from the data.
    """
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc
    url = database_url or settings.database_url
    source = sqlite_path(url)
    reminder = secret_reminder(url, settings.secret_key is not None)
    if source is None:
        if url.startswith(("postgres://", "postgresql")):
            click.echo(postgres_practice(url, str(path)))
            click.echo(reminder)
            raise SystemExit(1)
        raise click.ClickException("an in-memory database has nothing to back up")
    try:
        result = backup_sqlite(source, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backed up {source} to {result.path}: {result.pages} pages, {result.size} bytes")
    click.echo(reminder)
