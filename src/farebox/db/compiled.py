"""Hot-path statements: written with SQLAlchemy Core, compiled once per dialect at import, and run
on the DBAPI cursor of the current transaction.

SQLAlchemy's per-execution work (parameter processing, result wrapping, cache-key building) cost
more than the SQLite statements themselves on a paid request; the SQL text stays SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ClauseElement

_DIALECTS = {
    "sqlite": sqlite.dialect(paramstyle="named"),
    "postgresql": postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
}


_PLACEHOLDER = {"sqlite": ":{}", "postgresql": "%({})s"}


class CompiledStatement:
    """One statement's SQL per dialect; parameters by name.

    A list parameter (`bindparam(name, expanding=True)`, for `IN (...)`) is expanded per call
    by `fetch_in`; the SQL for each list length is kept.
    """

    __slots__ = ("_expanded", "_sql")

    def __init__(self, statement: ClauseElement | Mapping[str, ClauseElement]) -> None:
        """`statement`, or one per dialect name where the SQL differs (ON CONFLICT, ...)."""
        per_dialect = (
            statement if isinstance(statement, Mapping) else dict.fromkeys(_DIALECTS, statement)
        )
        self._sql: Mapping[str, str] = MappingProxyType(
            {
                name: str(per_dialect[name].compile(dialect=dialect))
                for name, dialect in _DIALECTS.items()
            }
        )
        self._expanded: dict[tuple[str, int], str] = {}

    def sql(self, conn: Connection) -> str:
        return self._sql[conn.dialect.name]

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Run once; returns the DBAPI cursor (rowcount, fetchall)."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(self._sql[conn.dialect.name], params)
        return cursor

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.execute(conn, params)
        count = int(cursor.rowcount)
        cursor.close()
        return count

    def fetch_in(self, conn: Connection, name: str, values: Sequence[Any]) -> list[Any]:
        """Run with the list parameter `name` bound to `values`; returns every row."""
        dialect = conn.dialect.name
        sql = self._expanded.get((dialect, len(values)))
        if sql is None:
            marks = ", ".join(
                _PLACEHOLDER[dialect].format(f"{name}_{i}") for i in range(len(values))
            )
            sql = self._sql[dialect].replace(f"__[POSTCOMPILE_{name}]", marks)
            self._expanded[(dialect, len(values))] = sql
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(sql, {f"{name}_{i}": v for i, v in enumerate(values)})
        rows = list(cursor.fetchall())
        cursor.close()
        return rows

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(self._sql[conn.dialect.name], rows)
        cursor.close()
