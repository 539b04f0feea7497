"""Cashu ecash paid per request: receipts (the operator's ecash, encrypted) and change.

Revision ID: 0005_cashu
Revises: 0004_pay402
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cashu"
down_revision = "0004_pay402"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cashu_receipts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("mint_url", sa.String(256), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("token_sats", sa.BigInteger, nullable=False),
        sa.Column("fee_sats", sa.BigInteger, nullable=False),
        sa.Column("sats", sa.BigInteger, nullable=False),
        sa.Column("nanos_per_sat", sa.BigInteger, nullable=False),
        sa.Column("value_nanos", sa.BigInteger, nullable=False),
        sa.Column("vault", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("change_sats", sa.BigInteger, nullable=True),
        sa.Column("change_token", sa.Text, nullable=True),
        sa.Column("change_until", sa.Float, nullable=True),
        sa.Column("kept_sats", sa.BigInteger, nullable=True),
        sa.Column("melted_at", sa.Float, nullable=True),
    )
    op.create_index("ix_cashu_receipts_mint_status", "cashu_receipts", ["mint_url", "status"])


def downgrade() -> None:
    op.drop_index("ix_cashu_receipts_mint_status", "cashu_receipts")
    op.drop_table("cashu_receipts")
