"""Private (enclave) queries: the attestation fingerprint and the reconcile mark on history rows.

Revision ID: 0004_private_queries
Revises: 0003_ledger_indexes
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_private_queries"
down_revision = "0003_ledger_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queries") as batch:
        batch.add_column(sa.Column("attestation", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reconcile", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queries") as batch:
        batch.drop_column("reconcile")
        batch.drop_column("attestation")
