"""Per-key rate limits and model scopes: `rpm_limit`, `tpm_limit` and `allowed_models`.

Three nullable columns on `api_keys`, NULL meaning "no limit" / "every model", so the change is
safe while replicas of the previous release keep serving: their SELECTs name their own columns
(or select the table as they know it), their INSERTs leave the new columns out (NULL), and the
new code reads NULL on every row made before as a key without limits. Nothing is rewritten, no
default is backfilled, so the ALTERs take no long lock on either database.

It also merges the two heads before it (0005_cashu and 0005_dashboard).

Revision ID: 0006_key_limits
Revises: 0005_cashu, 0005_dashboard
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_key_limits"
down_revision = ("0005_cashu", "0005_dashboard")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tpm_limit", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("allowed_models", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allowed_models")
        batch.drop_column("tpm_limit")
        batch.drop_column("rpm_limit")
