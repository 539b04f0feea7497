"""The media tables (created by migration 0002_media), on the shared metadata.

Kept beside the media code rather than in db/schema.py while that file is being changed for
payments; both use the same `metadata`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from farebox.db.schema import metadata

# One stored file of a generation: GET /v1/media/{gen_id}/{n}.
media_objects = Table(
    "media_objects",
    metadata,
    Column("gen_id", String(40), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("storage_key", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Async video jobs: the hold taken at submit and the upstream job, until settled.
video_jobs = Table(
    "video_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("model", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # pending | processing | completed | failed
    Column("provider", String(64), nullable=True),
    Column("upstream", Text, nullable=True),  # the adapter's job handle (JSON)
    Column("request", Text, nullable=False),  # the validated job (JSON), for resubmission
    Column("request_id", String(64), nullable=False),  # the Charge's request id
    Column("holds", Text, nullable=False),  # [[transfer_id, amount], ...] (JSON)
    Column("estimated", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=True),
    Column("seconds", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("content_type", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_poll_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_video_jobs_due", "status", "next_poll_at"),
    Index("ix_video_jobs_account", "account_id"),
)
