"""`farebox secret export` and `farebox secret rotate`: the instance secret's operator commands."""

from __future__ import annotations

from pathlib import Path

import click

from farebox.app import prepare_database
from farebox.keys.instance_secret import (
    LEGACY_META_KEY,
    ROTATING_SUFFIX,
    SecretSetupError,
    forget_legacy_secret,
    instance_secret,
    meta_value,
    new_secret,
    replace_secret_file,
    secret_file_for,
    write_secret_file,
)
from farebox.keys.secret_rotation import reencrypt_all
from farebox.settings import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _write_new(path: Path, secret: str) -> None:
    """Write `secret` to `path`, which must not exist yet."""
    try:
        written = write_secret_file(path, secret)
    except (OSError, SecretSetupError) as exc:
        raise click.ClickException(f"cannot write {path}: {exc}") from exc
    if written != secret:
        raise click.ClickException(f"{path} already exists with another secret: choose a new path")


@click.group()
def secret_command() -> None:
    """The instance secret (encrypts API keys and NWC connections, signs media URLs)."""


@secret_command.command("export")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the secret (created with mode 0600; must not exist).",
)
def export(path: Path) -> None:
    """Move the secret an older farebox kept in the database out of it, into FILE.

    Then start every replica with FAREBOX_SECRET_KEY_FILE=FILE. Only the database is read: no
    other setting is needed, so this works on PostgreSQL before the secret is configured.
    """
    db = prepare_database(_settings())
    try:
        legacy = db.read_sync(meta_value, LEGACY_META_KEY)
        if legacy is None:
            raise click.ClickException(
                "this database holds no instance secret (nothing to export): the secret is "
                "already outside it"
            )
        _write_new(path, legacy)
        db.write_sync(forget_legacy_secret)
        db.scrub()
    finally:
        db.close()
    click.echo(
        f"wrote the instance secret to {path} and removed it from the database; start farebox "
        f"with FAREBOX_SECRET_KEY_FILE={path}, and back the file up apart from the database"
    )


@secret_command.command("rotate")
@click.option(
    "--new-file",
    "new_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the new secret (mode 0600; must not exist). Required when the secret "
    "comes from FAREBOX_SECRET_KEY or FAREBOX_SECRET_KEY_FILE.",
)
def rotate(new_path: Path | None) -> None:
    """Re-encrypt stored API keys and NWC connections under a new secret.

    Stop every farebox process on this database first: one still running keeps the old secret.
    Media URLs already handed out stop working. With the default SQLite secret file the file is
    replaced; otherwise start every replica with FAREBOX_SECRET_KEY_FILE=NEW_FILE afterwards.
    """
    settings = _settings()
    configured = settings.secret_key is not None
    auto_file = None if configured else secret_file_for(settings.database_url)
    if configured and new_path is None:
        raise click.ClickException(
            "the secret comes from FAREBOX_SECRET_KEY(_FILE): give --new-file PATH for the new one"
        )
    if not configured and auto_file is None:
        raise click.ClickException("nothing to rotate: this database keeps no secret file")
    if auto_file is not None and new_path is not None:
        raise click.ClickException(
            f"the secret is in {auto_file}, which rotate replaces: leave out --new-file"
        )
    db = prepare_database(settings)
    try:
        try:
            old = instance_secret(settings, db)
        except SecretSetupError as exc:
            raise click.ClickException(f"instance secret: {exc}") from exc
        fresh = new_secret()
        target = new_path
        if auto_file is not None:
            target = auto_file.with_name(auto_file.name + ROTATING_SUFFIX)
        assert target is not None
        _write_new(target, fresh)  # before the database answers to it: never a lost secret
        report = db.write_sync(reencrypt_all, old, fresh)
        if auto_file is not None:
            replace_secret_file(target, auto_file)
    finally:
        db.close()
    click.echo(
        f"re-encrypted {report.api_keys} API keys and {report.nwc_connections} NWC connections"
        + (f" and {report.cashu_receipts} Cashu receipts" if report.cashu_receipts else "")
        + (
            f"; {report.undecryptable} could not be decrypted with the old secret either and "
            "were left as they were"
            if report.undecryptable
            else ""
        )
    )
    if auto_file is not None:
        click.echo(f"the new secret is in {auto_file}: back it up")
    else:
        click.echo(
            f"the new secret is in {target}: start every replica with "
            f"FAREBOX_SECRET_KEY_FILE={target} (the old secret is refused from now on)"
        )
