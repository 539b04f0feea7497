"""Operator losses: usage an upstream reported above what the customer could be charged.

Revision ID: 0004_operator_losses
Revises: 0003_ledger_indexes
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_operator_losses"
down_revision = "0003_ledger_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_losses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("sale_value", sa.BigInteger, nullable=False),
        sa.Column("charged", sa.BigInteger, nullable=False),
        sa.Column("unbilled", sa.BigInteger, nullable=False),
        sa.Column("upstream_cost", sa.BigInteger, nullable=True),
        sa.Column("unbilled_cost", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_operator_losses_time", "operator_losses", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_operator_losses_time", "operator_losses")
    op.drop_table("operator_losses")
