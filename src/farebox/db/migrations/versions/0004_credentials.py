"""Credentials: every customer account gets a public id; its credit_id is kept only as a hash.

Until now a customer's ledger account id WAS its credit_id, so the secret sat in every table
that names an account. This revision gives each customer account a random public id
(`acct_…`), rewrites every column that holds an account id to it, and keeps only the SHA-256 of
the old credit_id (table `account_credentials`), so existing credit_ids keep working and a copy
of the database no longer holds any.

It merges the heads it must follow: the media, payments and operator-loss tables hold customer
account ids too. (Pay-per-request accounts, kind "pay402", have no credit_id and keep their ids.)
Stop every replica before upgrading: a process still running the old code would look accounts
up by credit_id. Irreversible: the credit_ids are gone once hashed.

Revision ID: 0004_credentials
Revises: 0002_media, 0002_payments, 0003_ledger_indexes, 0004_operator_losses
Create Date: 2026-11-27
"""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0004_credentials"
down_revision = ("0002_media", "0002_payments", "0003_ledger_indexes", "0004_operator_losses")
branch_labels = None
depends_on = None

# Every (table, column) that stores a customer's account id.
ACCOUNT_COLUMNS = (
    ("accounts", "id"),
    ("transfers", "debit_account_id"),
    ("transfers", "credit_account_id"),
    ("holds", "account_id"),
    ("holds", "credit_account_id"),
    ("api_keys", "account_id"),
    ("queries", "account_id"),
    ("topup_invoices", "account_id"),
    ("nwc_connections", "account_id"),
    ("nwc_attempts", "account_id"),
    ("media_objects", "account_id"),
    ("video_jobs", "account_id"),
    ("operator_losses", "account_id"),
)
_MAP = "credentials_upgrade_map"


def upgrade() -> None:
    op.create_table(
        "account_credentials",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("credit_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("rotated_at", sa.Float, nullable=True),
    )
    bind = op.get_bind()
    customers = bind.execute(
        sa.text("SELECT id, created_at FROM accounts WHERE kind = 'customer'")
    ).fetchall()
    if not customers:
        return
    mapping = op.create_table(
        _MAP,
        sa.Column("old_id", sa.String(64), primary_key=True),
        sa.Column("new_id", sa.String(64), nullable=False, unique=True),
    )
    pairs = [(str(old), "acct_" + secrets.token_hex(12)) for old, _ in customers]
    op.bulk_insert(mapping, [{"old_id": old, "new_id": new} for old, new in pairs])
    credentials = sa.table(
        "account_credentials",
        sa.column("account_id", sa.String),
        sa.column("credit_hash", sa.String),
        sa.column("created_at", sa.Float),
        sa.column("rotated_at", sa.Float),
    )
    created = {str(old): float(when or time.time()) for old, when in customers}
    op.bulk_insert(
        credentials,
        [
            {
                "account_id": new,
                "credit_hash": hashlib.sha256(old.encode()).hexdigest(),
                "created_at": created[old],
                "rotated_at": None,
            }
            for old, new in pairs
        ],
    )
    for table, column in ACCOUNT_COLUMNS:
        bind.execute(
            sa.text(
                f"UPDATE {table} SET {column} = "
                f"(SELECT m.new_id FROM {_MAP} m WHERE m.old_id = {table}.{column}) "
                f"WHERE {column} IN (SELECT old_id FROM {_MAP})"
            )
        )
    op.drop_table(_MAP)
    if bind.dialect.name == "sqlite":
        # The old credit_ids linger in free pages and the WAL until overwritten: ask the first
        # start to rewrite the file (Database.scrub_if_requested; VACUUM cannot run here, in a
        # transaction).
        meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
        op.bulk_insert(meta, [{"key": "scrub_requested", "value": revision}])


def downgrade() -> None:
    raise NotImplementedError(
        "0004_credentials cannot be undone: the credit_ids were replaced by their hashes. "
        "Restore a backup taken before the upgrade instead."
    )
