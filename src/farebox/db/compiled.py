"""Hot-path statements: written with SQLAlchemy Core, compiled once per dialect at import, and run
on the DBAPI cursor of the current transaction.

SQLAlchemy's per-execution work (parameter processing, result wrapping, cache-key building) cost
more than the SQLite statements themselves on a paid request; the SQL text stays SQLAlchemy's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ClauseElement

_DIALECTS = {
    "sqlite": sqlite.dialect(paramstyle="named"),
    "postgresql": postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
}


# `(columns) VALUES (%(a)s::TYPE, ...)`: placeholders carry their own parentheses.
_VALUES = re.compile(r"\((?P<columns>[^()]*)\) VALUES \((?:[^()]|\(\w+\))*\)")


def _raw(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, send the statements run inside without waiting for each one's answer
    (psycopg's pipeline mode): a transaction costs a few round trips instead of one per
    statement. `rowcount` and `fetch_in` wait for the answers they need. No-op on SQLite."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with _raw(conn).pipeline():
        yield


def sync(conn: Connection) -> None:
    """Wait for the answers to every statement sent so far (pipelined PostgreSQL only)."""
    pipeline = getattr(_raw(conn), "_pipeline", None) if conn.dialect.name == "postgresql" else None
    if pipeline is not None:
        pipeline.sync()


class _UnnestInsert:
    """PostgreSQL: an `INSERT ... VALUES (row)` for many rows as one statement, `INSERT ...
    SELECT * FROM unnest(column arrays)`: one round trip and one short, prepared statement
    whatever the row count. Arrays go in psycopg's binary format (no text quoting)."""

    __slots__ = ("_columns", "_sql")

    def __init__(self, sql: str, table: Table) -> None:
        match = _VALUES.search(sql)
        if match is None:
            raise ValueError(f"not a single-row INSERT: {sql}")
        self._columns = [c.strip() for c in match["columns"].split(",")]
        dialect = _DIALECTS["postgresql"]
        arrays = ", ".join(
            f"%b::{table.c[c].type.compile(dialect=dialect)}[]" for c in self._columns
        )
        head, tail = sql[: match.start()], sql[match.end() :].split(" RETURNING ", 1)[0]
        self._sql = f"{head}({match['columns']}) SELECT * FROM unnest({arrays}){tail}"

    def execute(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        cursor.execute(self._sql, [[row[c] for row in rows] for c in self._columns])


class CompiledStatement:
    """One statement's SQL per dialect; parameters by name.

    A list parameter (`bindparam(name, expanding=True)`, for `IN (...)`) is bound per call by
    `fetch_in`: `= ANY(array)` on PostgreSQL, one placeholder per value on SQLite (the SQL for
    each list length is kept). A bulk INSERT's rows go to PostgreSQL as one statement
    (`executemany`); SQLite's executemany is already a loop in C.
    """

    __slots__ = ("_bulk", "_expanded", "_sql")

    def __init__(
        self, statement: ClauseElement | Mapping[str, ClauseElement], bulk: Table | None = None
    ) -> None:
        """`statement`, or one per dialect name where the SQL differs (ON CONFLICT, ...); `bulk`
        when it is a single-row INSERT into that table, which executemany should send as one
        statement."""
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
        self._bulk = _UnnestInsert(self._sql["postgresql"], bulk) if bulk is not None else None

    def sql(self, conn: Connection) -> str:
        return self._sql[conn.dialect.name]

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Run once; returns the DBAPI cursor (rowcount, fetchall). Pipelined, the statement is
        only sent: its rowcount is known after `sync(conn)`."""
        cursor = _raw(conn).cursor()
        cursor.execute(self._sql[conn.dialect.name], params)
        return cursor

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.execute(conn, params)
        sync(conn)
        return int(cursor.rowcount)

    def fetch(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        return list(self.execute(conn, params).fetchall())

    def fetch_in(
        self,
        conn: Connection,
        name: str,
        values: Sequence[Any],
        params: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """Run with the list parameter `name` bound to `values` (and any other `params`);
        returns every row."""
        dialect = conn.dialect.name
        key = (dialect, 0 if dialect == "postgresql" else len(values))
        sql = self._expanded.get(key)
        if sql is None:
            if dialect == "postgresql":  # one array parameter: one SQL text for every length
                sql = self._sql[dialect].replace(
                    f"IN (__[POSTCOMPILE_{name}])", f"= ANY(%({name})s)"
                )
            else:
                marks = ", ".join(f":{name}_{i}" for i in range(len(values)))
                sql = self._sql[dialect].replace(f"__[POSTCOMPILE_{name}]", marks)
            self._expanded[key] = sql
        bound: dict[str, Any] = dict(params or {})
        if dialect == "postgresql":
            bound[name] = list(values)
        else:
            bound.update((f"{name}_{i}", v) for i, v in enumerate(values))
        cursor = _raw(conn).cursor()
        cursor.execute(sql, bound)
        return list(cursor.fetchall())

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        cursor = _raw(conn).cursor()
        if self._bulk is not None and conn.dialect.name == "postgresql":
            self._bulk.execute(cursor, rows)
        else:
            cursor.executemany(self._sql[conn.dialect.name], rows)
