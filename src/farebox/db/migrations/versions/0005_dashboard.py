"""The web dashboard: server-side sign-in sessions, and each account's playground key.

`dashboard_sessions` holds one row per signed-in browser (customer or operator), keyed by the
SHA-256 of the random id its cookie carries, so every replica sees the same sessions and a copy
of the database signs nobody in. `dashboard_keys` names the API key the playground bills for
each account (an ordinary key the customer sees, limits and revokes like any other).

It also merges the other heads (pay402, private queries): Alembic 1.x fails to upgrade a fresh
database to a revision below 0004_credentials alone (KeyError '0003_ledger_indexes': that merge
names both 0003_ledger_indexes and a descendant of it), and merging every head here avoids it.

Revision ID: 0005_dashboard
Revises: 0004_credentials, 0004_pay402, 0004_private_queries
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_dashboard"
down_revision = ("0004_credentials", "0004_pay402", "0004_private_queries")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("admin_check", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_account", "dashboard_sessions", ["account_id"])
    op.create_index("ix_dashboard_sessions_expires", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "dashboard_keys",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dashboard_keys")
    op.drop_index("ix_dashboard_sessions_expires", "dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_account", "dashboard_sessions")
    op.drop_table("dashboard_sessions")
