"""Reading the query history with PPQ's filters and pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select

from farebox.db.database import Database
from farebox.db.schema import queries

MAX_PAGE_COUNT = 100


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    account_id: str
    key_id: str | None = None
    start: float | None = None
    end: float | None = None
    model: str | None = None
    query_source: str | None = None
    query_type: str | None = None
    page: int = 1
    page_count: int = 20


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[Row[Any]]
    total: int


def _query_page(conn: Connection, f: HistoryFilter) -> HistoryPage:
    conditions = [queries.c.account_id == f.account_id]
    if f.key_id is not None:
        conditions.append(queries.c.key_id == f.key_id)
    if f.start is not None:
        conditions.append(queries.c.created_at >= f.start)
    if f.end is not None:
        conditions.append(queries.c.created_at <= f.end)
    if f.model is not None:
        conditions.append(queries.c.model == f.model)
    if f.query_source is not None:
        conditions.append(queries.c.query_source == f.query_source)
    if f.query_type is not None:
        conditions.append(queries.c.query_type == f.query_type)
    total = conn.execute(select(func.count()).select_from(queries).where(*conditions)).scalar_one()
    rows = conn.execute(
        select(queries)
        .where(*conditions)
        .order_by(queries.c.created_at.desc(), queries.c.id.desc())
        .limit(f.page_count)
        .offset((f.page - 1) * f.page_count)
    ).fetchall()
    return HistoryPage(list(rows), int(total))


def _total_spent(conn: Connection, account_id: str) -> int:
    value = conn.execute(
        select(func.coalesce(func.sum(queries.c.price), 0)).where(
            queries.c.account_id == account_id
        )
    ).scalar_one()
    return int(value)


class History:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, f: HistoryFilter) -> HistoryPage:
        return await self.db.read(_query_page, f)

    async def total_spent(self, account_id: str) -> int:
        return await self.db.read(_total_spent, account_id)
