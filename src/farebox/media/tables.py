"""The media tables (created by migration 0002_media); defined in db/schema.py with the rest."""

from __future__ import annotations

from farebox.db.schema import media_objects, video_jobs

__all__ = ["media_objects", "video_jobs"]
