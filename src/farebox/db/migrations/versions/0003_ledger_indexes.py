"""Ledger: drop the transfers indexes by account, which nothing reads.

Every paid request writes two transfers, and each index is one more B-tree page written per
commit; the ledger check scans the whole table either way.

Revision ID: 0003_ledger_indexes
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0003_ledger_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_transfers_debit", table_name="transfers")
    op.drop_index("ix_transfers_credit", table_name="transfers")


def downgrade() -> None:
    op.create_index("ix_transfers_debit", "transfers", ["debit_account_id"])
    op.create_index("ix_transfers_credit", "transfers", ["credit_account_id"])
