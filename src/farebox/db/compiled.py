"""Hot-path statements: written with SQLAlchemy Core, compiled once per dialect at import, and run
by a `farebox.db.session.Session` on the driver of the current transaction.

SQLAlchemy's per-execution work (parameter processing, result wrapping, cache-key building) cost
more than the SQLite statements themselves on a paid request; the SQL text stays SQLAlchemy's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ClauseElement

_DIALECTS = {
    "sqlite": sqlite.dialect(paramstyle="named"),
    "postgresql": postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
}


# `(columns) VALUES (%(a)s::TYPE, ...)`: placeholders carry their own parentheses.
_VALUES = re.compile(r"\((?P<columns>[^()]*)\) VALUES \((?:[^()]|\(\w+\))*\)")


class _JsonRowsInsert:
    """PostgreSQL: an `INSERT ... VALUES (row)` for many rows as one statement, `INSERT ...
    SELECT columns FROM json_populate_recordset(NULL::table, rows)`: one round trip and one
    short, prepared statement whatever the row count. The rows go as one JSON text made by
    orjson; binding them as one array per column cost ~30 % more of a tick's CPU in psycopg's
    array dumpers."""

    __slots__ = ("sql",)

    def __init__(self, sql: str, table: Table) -> None:
        match = _VALUES.search(sql)
        if match is None:
            raise ValueError(f"not a single-row INSERT: {sql}")
        head, tail = sql[: match.start()], sql[match.end() :].split(" RETURNING ", 1)[0]
        columns = match["columns"]
        self.sql = (
            f"{head}({columns}) SELECT {columns} "
            f"FROM json_populate_recordset(NULL::{table.name}, %s::json){tail}"
        )

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, tuple[str]]:
        return self.sql, (json_rows(rows),)


def fail_unless(condition: str) -> str:
    """PostgreSQL: an expression that fails its statement unless the SQL `condition` is true,
    by dividing by zero (`farebox.db.session` raises that as `CheckFailed`). A failed statement
    rolls back its transaction: a pipelined transaction can check its assumptions on the
    server instead of waiting to read the answers before it commits."""
    return f"1 / ({condition})::int"


_NAMED_PARAM = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=256)
def together(parts: tuple[tuple[CompiledStatement, bool], ...]) -> str:
    """PostgreSQL: several UPDATEs as one statement, run in the order given (each a WITH part,
    run when the final check first asks for its row count), the parameters of part i renamed
    `u{i}_<name>`. It fails (`fail_unless`) unless each part marked True changed exactly one
    row. One statement costs psycopg less client time than several."""
    ctes, checks = [], []
    for i, (stmt, must_change_one) in enumerate(parts):
        sql = _NAMED_PARAM.sub(rf"%(u{i}_\1)s", stmt.sql("postgresql"))
        ctes.append(f"u{i} AS ({sql} RETURNING 1)")
        checks.append(f"(SELECT count(*) FROM u{i}) {'= 1' if must_change_one else '>= 0'}")
    return f"WITH {', '.join(ctes)} SELECT {fail_unless(' AND '.join(checks))}"


def json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as the JSON text a `json_populate_recordset` parameter takes."""
    return orjson.dumps(rows).decode()


class CompiledStatement:
    """One statement's SQL per dialect; parameters by name.

    A list parameter (`bindparam(name, expanding=True)`, for `IN (...)`) is bound per call by
    `bind_in`: `= ANY(array)` on PostgreSQL, one placeholder per value on SQLite (the SQL for
    each list length is kept). A bulk INSERT's rows go to PostgreSQL as one statement
    (`executemany`); SQLite's executemany is already a loop in C.
    """

    __slots__ = ("_bulk", "_expanded", "_sql")

    def __init__(
        self,
        statement: ClauseElement | Mapping[str, ClauseElement | str],
        bulk: Table | None = None,
    ) -> None:
        """`statement`, or one per dialect name where the SQL differs (ON CONFLICT, ...), as a
        clause or as SQL text (a statement only one dialect runs names only that one); `bulk`
        when it is a single-row INSERT into that table, which executemany should send as one
        statement."""
        per_dialect = (
            statement if isinstance(statement, Mapping) else dict.fromkeys(_DIALECTS, statement)
        )
        self._sql: Mapping[str, str] = MappingProxyType(
            {
                name: sql if isinstance(sql, str) else str(sql.compile(dialect=_DIALECTS[name]))
                for name, sql in per_dialect.items()
            }
        )
        self._expanded: dict[tuple[str, int], str] = {}
        self._bulk = _JsonRowsInsert(self._sql["postgresql"], bulk) if bulk is not None else None

    def bulk_sql(self, rows_param: str) -> str:
        """PostgreSQL: the bulk form of this single-row INSERT, its rows in the JSON parameter
        named `rows_param` (to compose into a larger statement)."""
        assert self._bulk is not None
        return self._bulk.sql.replace("%s::json", f"%({rows_param})s::json")

    def sql(self, dialect: str) -> str:
        return self._sql[dialect]

    def bind_in(
        self,
        dialect: str,
        name: str,
        values: Sequence[Any],
        params: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The SQL and parameters with the list parameter `name` bound to `values`."""
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
        return sql, bound

    def bulk(self, dialect: str, rows: Sequence[Mapping[str, Any]]) -> tuple[str, Any] | None:
        """Many rows as one statement (SQL, parameters), or None where `executemany` of the
        single-row statement is the way (SQLite's is already a loop in C)."""
        if self._bulk is None or dialect != "postgresql":
            return None
        return self._bulk.bind(rows)
