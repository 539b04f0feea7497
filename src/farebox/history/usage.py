"""Spend per UTC day and model, from the query history: the customer's activity chart and the
operator's revenue report read the same rows.

Days are UTC calendar days (`created_at // 86400`); the bucketing runs in the database, so a
report over many requests returns one row per day and model, never the requests themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, ColumnElement, Connection, cast, func, select

from farebox.db.schema import queries

SECONDS_PER_DAY = 86_400
MAX_REPORT_DAYS = 366


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One UTC day's requests of one model (of one account, or of every account)."""

    day: date
    model: str
    requests: int
    input_count: int
    output_count: int
    spent: int  # nanodollars charged


def _day_number(conn: Connection) -> ColumnElement[int]:
    """The UTC day number of a row, in the database's own arithmetic."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(queries.c.created_at / SECONDS_PER_DAY), BigInteger)
    return cast(queries.c.created_at / SECONDS_PER_DAY, BigInteger)  # SQLite truncates


def daily_usage(
    conn: Connection, since: float, until: float, account_id: str | None = None
) -> list[DailyUsage]:
    """Rows of [since, until) grouped by UTC day and model, oldest day first."""
    day = _day_number(conn).label("day")
    conditions = [queries.c.created_at >= since, queries.c.created_at < until]
    if account_id is not None:
        conditions.append(queries.c.account_id == account_id)
    rows = conn.execute(
        select(
            day,
            queries.c.model,
            func.count().label("requests"),
            func.coalesce(func.sum(queries.c.input_count), 0).label("input_count"),
            func.coalesce(func.sum(queries.c.output_count), 0).label("output_count"),
            func.coalesce(func.sum(queries.c.price), 0).label("spent"),
        )
        .where(*conditions)
        .group_by(day, queries.c.model)
        .order_by(day, queries.c.model)
    ).fetchall()
    return [
        DailyUsage(
            day=datetime.fromtimestamp(int(r.day) * SECONDS_PER_DAY, UTC).date(),
            model=str(r.model),
            requests=int(r.requests),
            input_count=int(r.input_count),
            output_count=int(r.output_count),
            spent=int(r.spent),
        )
        for r in rows
    ]


def day_range(days: int, now: float) -> tuple[float, float]:
    """[start of the UTC day `days - 1` days ago, end of today): the last `days` whole days."""
    days = max(1, min(days, MAX_REPORT_DAYS))
    today = int(now // SECONDS_PER_DAY)
    return float((today - days + 1) * SECONDS_PER_DAY), float((today + 1) * SECONDS_PER_DAY)
