"""Initial schema: ledger accounts and transfers, holds, API keys, query history, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SYSTEM_ACCOUNTS = ("revenue", "topups", "grants")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("debits_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("debits_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credits_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credits_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("debit_account_id", sa.String(64), nullable=False),
        sa.Column("credit_account_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("pending_id", sa.String(64), nullable=True, unique=True),
        sa.Column("timeout_at", sa.Float, nullable=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("ref", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_transfers_debit", "transfers", ["debit_account_id"])
    op.create_index("ix_transfers_credit", "transfers", ["credit_account_id"])
    op.create_table(
        "holds",
        sa.Column("transfer_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("credit_account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("recorded", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("recovery", sa.Text, nullable=True),
    )
    op.create_index("ix_holds_expires", "holds", ["expires_at"])
    op.create_index("ix_holds_request", "holds", ["request_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_encrypted", sa.Text, nullable=False),
        sa.Column("key_hint", sa.String(16), nullable=False),
        sa.Column("usage_limit", sa.BigInteger, nullable=True),
        sa.Column("reset_period", sa.String(16), nullable=True),
        sa.Column("period_generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("period_key", sa.String(48), nullable=False, server_default=""),
        sa.Column("period_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("period_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("expire_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_index("ix_api_keys_account", "api_keys", ["account_id"])
    op.create_table(
        "queries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("input_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("output_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("query_type", sa.String(32), nullable=False),
        sa.Column("query_source", sa.String(32), nullable=False),
        sa.Column("is_online", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_free_model", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_queries_account_time", "queries", ["account_id", "created_at"])
    op.create_index("ix_queries_key_time", "queries", ["key_id", "created_at"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.String),
        sa.column("kind", sa.String),
        sa.column("flags", sa.Integer),
        sa.column("created_at", sa.Float),
    )
    now = time.time()
    op.bulk_insert(
        accounts,
        [{"id": a, "kind": "system", "flags": 0, "created_at": now} for a in SYSTEM_ACCOUNTS],
    )


def downgrade() -> None:
    for table in ("meta", "queries", "api_keys", "holds", "transfers", "accounts"):
        op.drop_table(table)
