"""Pay per request (HTTP 402): paid credentials, and the query source of a video job.

Revision ID: 0004_pay402
Revises: 0003_ledger_indexes (and needs 0002_media, which made video_jobs)
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_pay402"
down_revision = "0003_ledger_indexes"
branch_labels = None
depends_on = "0002_media"


def upgrade() -> None:
    op.create_table(
        "pay402_credentials",
        sa.Column("payment_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("price_nanos", sa.BigInteger, nullable=False),
        sa.Column("sats", sa.BigInteger, nullable=False),
        sa.Column("paid_at", sa.Float, nullable=False),
        sa.Column("retry_until", sa.Float, nullable=False),
    )
    op.add_column(
        "video_jobs",
        sa.Column("query_source", sa.String(32), nullable=False, server_default="api"),
    )


def downgrade() -> None:
    with op.batch_alter_table("video_jobs") as batch:
        batch.drop_column("query_source")
    op.drop_table("pay402_credentials")
