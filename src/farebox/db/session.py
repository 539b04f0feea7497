"""A write transaction as the ledger's hot path sees it: one code path for every driver.

The hot path is written once, as coroutines taking a `Session`. On SQLite (and for the
synchronous callers: the sweeper, tests, the CLI) a `SyncSession` runs it on the DBAPI cursor
of a SQLAlchemy transaction; its coroutines never suspend, so `run_sync` drives them to the end
in one step. On PostgreSQL the gateway runs it on an `AsyncSession`: psycopg's async connection
in pipeline mode on the event loop itself. A worker thread there lost the GIL at each of the many
points where psycopg waits on the socket and waited up to a switch interval (5 ms) to get it back
from a busy loop: a tick that took 4 ms alone took 137 ms beside a busy thread.

Statements are sent with `execute`; pipelined, their answers (row counts) are known after
`sync`. `rowcount`, `fetch` and `fetch_in` wait for the answers they need.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection

from farebox.db.compiled import CompiledStatement

P = ParamSpec("P")
T = TypeVar("T")


class Session(ABC):
    """One open write transaction; statements are bound for `dialect`."""

    dialect: str

    @abstractmethod
    async def _send(self, sql: str, params: Any) -> Any:
        """Run (pipelined: send) one statement; returns its cursor."""

    @abstractmethod
    async def _send_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    @abstractmethod
    async def _fetchall(self, cursor: Any) -> list[Any]: ...

    @abstractmethod
    async def sync(self) -> None:
        """Wait for the answers to every statement sent so far (pipelined PostgreSQL only)."""

    async def execute(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> Any:
        """Run once; returns the cursor. Pipelined, its rowcount is known after `sync()`."""
        return await self._send(stmt.sql(self.dialect), params)

    async def rowcount(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> int:
        cursor = await self.execute(stmt, params)
        await self.sync()
        return int(cursor.rowcount)

    async def fetch(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> list[Any]:
        return await self._fetchall(await self.execute(stmt, params))

    async def fetch_in(
        self,
        stmt: CompiledStatement,
        name: str,
        values: Sequence[Any],
        params: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """Run with the list parameter `name` bound to `values` (and any other `params`);
        returns every row."""
        sql, bound = stmt.bind_in(self.dialect, name, values, params)
        return await self._fetchall(await self._send(sql, bound))

    async def executemany(self, stmt: CompiledStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        bulk = stmt.bulk(self.dialect, rows)
        if bulk is None:
            await self._send_many(stmt.sql(self.dialect), rows)
        else:
            await self._send(*bulk)


class SyncSession(Session):
    """A session on the DBAPI connection of a SQLAlchemy transaction (see `sync_session`)."""

    def __init__(self, conn: Connection) -> None:
        self.dialect = conn.dialect.name
        self._raw: Any = conn.connection.dbapi_connection
        self._pipeline: Any = None

    async def _send(self, sql: str, params: Any) -> Any:
        cursor = self._raw.cursor()
        cursor.execute(sql, params)
        return cursor

    async def _send_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._raw.cursor().executemany(sql, rows)

    async def _fetchall(self, cursor: Any) -> list[Any]:
        return list(cursor.fetchall())

    async def sync(self) -> None:
        if self._pipeline is not None:
            self._pipeline.sync()


@contextmanager
def sync_session(conn: Connection) -> Iterator[SyncSession]:
    """A `SyncSession` on `conn`; on PostgreSQL statements are pipelined (psycopg's pipeline
    mode): a transaction costs a few round trips instead of one per statement."""
    session = SyncSession(conn)
    if session.dialect != "postgresql":
        yield session
        return
    with session._raw.pipeline() as pipeline:
        session._pipeline = pipeline
        yield session


class AsyncSession(Session):
    """A session on a psycopg `AsyncConnection` inside a transaction and a pipeline."""

    dialect = "postgresql"

    def __init__(self, conn: Any, pipeline: Any) -> None:
        self._conn = conn
        self._pipeline = pipeline

    async def _send(self, sql: str, params: Any) -> Any:
        cursor = self._conn.cursor()
        await cursor.execute(sql, params)
        return cursor

    async def _send_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._conn.cursor().executemany(sql, rows)

    async def _fetchall(self, cursor: Any) -> list[Any]:
        return list(await cursor.fetchall())

    async def sync(self) -> None:
        await self._pipeline.sync()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends (one running on a `SyncSession`) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a coroutine on a synchronous session tried to suspend")


def run_in(
    conn: Connection,
    fn: Callable[Concatenate[Session, P], Coroutine[Any, Any, T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run the session function `fn(session, *args)` on the open transaction of `conn`."""
    with sync_session(conn) as session:
        return run_sync(fn(session, *args, **kwargs))
