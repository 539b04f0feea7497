"""Times as the API shows them: ISO 8601 in UTC with a `Z` (2026-12-05T20:01:08.5Z)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(ts: float | None) -> str | None:
    """A Unix timestamp as ISO 8601 UTC; None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
