"""Payments: top-up invoices, the dev wallet's invoices, NWC auto top-up connections and attempts.

Revision ID: 0002_payments
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_payments"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "topup_invoices",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("backend_invoice_id", sa.String(128), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("sats", sa.BigInteger, nullable=False),
        sa.Column("usd_nanos", sa.BigInteger, nullable=False),
        sa.Column("btc_usd", sa.String(40), nullable=False),
        sa.Column("bolt11", sa.Text, nullable=True),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("payment_uri", sa.Text, nullable=True),
        sa.Column("amount_due", sa.String(40), nullable=True),
        sa.Column("checkout_url", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("overpaid", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("checked_at", sa.Float, nullable=True),
        sa.Column("paid_at", sa.Float, nullable=True),
        sa.UniqueConstraint("backend", "backend_invoice_id", name="uq_topup_backend_invoice"),
    )
    op.create_index("ix_topup_account_time", "topup_invoices", ["account_id", "created_at"])
    op.create_index("ix_topup_status_checked", "topup_invoices", ["status", "checked_at"])
    op.create_table(
        "devwallet_invoices",
        sa.Column("payment_hash", sa.String(64), primary_key=True),
        sa.Column("bolt11", sa.Text, nullable=False),
        sa.Column("amount_msat", sa.BigInteger, nullable=False),
        sa.Column("preimage", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("paid_at", sa.Float, nullable=True),
    )
    op.create_table(
        "nwc_connections",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("wallet_pubkey", sa.String(64), nullable=False),
        sa.Column("relays", sa.Text, nullable=False),
        sa.Column("uri_encrypted", sa.Text, nullable=False),
        sa.Column("threshold_nanos", sa.BigInteger, nullable=False),
        sa.Column("topup_nanos", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("busy_until", sa.Float, nullable=True),
        sa.Column("next_attempt_at", sa.Float, nullable=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_attempt_at", sa.Float, nullable=True),
        sa.Column("last_success_at", sa.Float, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "nwc_attempts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("invoice_id", sa.String(32), nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_nwc_attempts_account", "nwc_attempts", ["account_id", "started_at"])


def downgrade() -> None:
    for table in ("nwc_attempts", "nwc_connections", "devwallet_invoices", "topup_invoices"):
        op.drop_table(table)
