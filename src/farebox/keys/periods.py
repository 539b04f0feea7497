"""Reset periods for key limits: UTC midnight; weeks start on Monday; months on the 1st."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RESET_PERIODS = ("daily", "weekly", "monthly")


def period_start(reset_period: str | None, now: datetime) -> datetime | None:
    if reset_period is None:
        return None
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if reset_period == "daily":
        return day
    if reset_period == "weekly":
        return day - timedelta(days=day.weekday())
    if reset_period == "monthly":
        return day.replace(day=1)
    raise ValueError(f"unknown reset period {reset_period!r}")


def next_reset(reset_period: str | None, now: datetime) -> datetime | None:
    start = period_start(reset_period, now)
    if start is None:
        return None
    if reset_period == "daily":
        return start + timedelta(days=1)
    if reset_period == "weekly":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_key(reset_period: str | None, generation: int, now: datetime) -> str:
    """Names the counter period; a new name starts the key's period usage from zero."""
    start = period_start(reset_period, now)
    return f"{generation}:{reset_period or 'all'}:{start.date().isoformat() if start else '-'}"
