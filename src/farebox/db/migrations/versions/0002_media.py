"""Media: stored generation files and async video jobs.

Revision ID: 0002_media
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_media"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_objects",
        sa.Column("gen_id", sa.String(40), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "video_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("upstream", sa.Text, nullable=True),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("holds", sa.Text, nullable=False),
        sa.Column("estimated", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=True),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("content_type", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_poll_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_video_jobs_due", "video_jobs", ["status", "next_poll_at"])
    op.create_index("ix_video_jobs_account", "video_jobs", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_video_jobs_account", "video_jobs")
    op.drop_index("ix_video_jobs_due", "video_jobs")
    op.drop_table("video_jobs")
    op.drop_table("media_objects")
