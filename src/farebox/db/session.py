"""A write transaction as the ledger's hot path sees it: one code path for every driver.

The hot path is written once, as coroutines taking a `Session`. On SQLite (and for the
synchronous callers: the sweeper, tests, the CLI) a `SyncSession` runs it on the DBAPI cursor
of a SQLAlchemy transaction; its coroutines never suspend, so `run_sync` drives them to the end
in one step. On PostgreSQL the gateway runs it on an `AsyncSession`: psycopg's async connection
in pipeline mode on the event loop itself. A worker thread there lost the GIL at each of the many
points where psycopg waits on the socket and waited up to a switch interval (5 ms) to get it back
from a busy loop: a tick that took 4 ms alone took 137 ms beside a busy thread.

Statements are sent with `execute`; pipelined, their answers (row counts) are known after
`sync`. `rowcount`, `fetch` and `fetch_in` wait for the answers they need. A statement may check
its own assumption on the server (`farebox.db.compiled.fail_unless`): when the check fails,
`execute` or `sync` raises `CheckFailed`, and the statements since the last sync are void.
"""

from __future__ import annotations

import contextlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import Connection

from farebox.db.compiled import CompiledStatement, together

P = ParamSpec("P")
T = TypeVar("T")

# Failed pipeline batches a `recover` waits out before it gives up on the connection.
_RECOVER_TRIES = 4
# UPDATEs `send_together` joins into one statement: few enough that the statements' shapes
# (and so psycopg's prepared statements) stay few.
_PARTS_PER_STATEMENT = 4


class Update(NamedTuple):
    """One UPDATE of `send_together`: its statement and parameters, whether it must change
    exactly one row, and which row it changes (any hashable name, e.g. ("accounts", id))."""

    stmt: CompiledStatement
    params: Mapping[str, Any]
    must_change_one: bool
    row: Hashable


class CheckFailed(Exception):
    """A statement's check on the server failed (`farebox.db.compiled.fail_unless`): the
    server rejected it and skips what follows until the next sync."""


@contextmanager
def _checks() -> Iterator[None]:
    """Raise a failed server-side check as `CheckFailed` (its SQL divides by zero on purpose).

    psycopg (9 MB resident) is imported only by a gateway on PostgreSQL, when SQLAlchemy opens
    its first connection: before that, no exception can be psycopg's."""
    try:
        yield
    except Exception as exc:
        driver = sys.modules.get("psycopg")
        if driver is not None and isinstance(exc, driver.errors.DivisionByZero):
            raise CheckFailed(str(exc)) from exc
        raise


def said_by_server(exc: BaseException) -> bool:
    """The server rejected a statement (so it skips the rest of the batch and rolls back up to
    the next sync), as against an error on the client, after which the server carries on."""
    return isinstance(exc, CheckFailed) or getattr(exc, "pgresult", None) is not None


class Session(ABC):
    """One open write transaction; statements are bound for `dialect`."""

    dialect: str
    # Statements are sent without waiting for their answers (PostgreSQL): the fewer `sync`s a
    # transaction needs, the fewer round trips it costs.
    pipelined: bool = False

    @abstractmethod
    async def _send(self, sql: str, params: Any) -> Any:
        """Run (pipelined: send) one statement; returns its cursor."""

    @abstractmethod
    async def _send_blind(self, sql: str, params: Any) -> None:
        """`_send` on the session's one shared cursor (for statements whose answer is unused)."""

    @abstractmethod
    async def _send_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    @abstractmethod
    async def fetchall(self, cursor: Any) -> list[Any]:
        """Every row of a statement sent with `execute` (waits for its answer)."""

    async def sync(self) -> None:
        """Wait for the answers to every statement sent so far (pipelined PostgreSQL only)."""
        with _checks():
            await self._sync_once()

    @abstractmethod
    async def _sync_once(self) -> None: ...

    async def recover(self) -> None:
        """After a statement failed on the server: wait out the rest of its batch, which the
        server skipped, so that the connection takes statements again (in a transaction, the
        transaction still needs its ROLLBACK [TO SAVEPOINT])."""
        if not self.pipelined:
            return
        import psycopg  # pipelined: on PostgreSQL, where psycopg is loaded already

        for _ in range(_RECOVER_TRIES):
            try:
                await self._sync_once()
            except psycopg.Error:
                continue  # the answers of the skipped statements ("pipeline aborted")
            # psycopg's record of which statements it has prepared on the server can be wrong
            # after a failed batch that prepared one (psycopg 3.3.9: a later execute failed
            # with 'prepared statement "_pg3_N" does not exist'). Forget them all: psycopg
            # deallocates them on the server with its next statement and prepares afresh.
            self._driver_connection()._prepared.clear()
            return
        raise RuntimeError("the connection did not recover from a failed pipeline batch")

    @abstractmethod
    def _driver_connection(self) -> Any:
        """The psycopg (or sqlite3) connection under this session."""

    async def execute(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> Any:
        """Run once; returns the cursor. Pipelined, its rowcount is known after `sync()`."""
        return await self._send(stmt.sql(self.dialect), params)

    async def send(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> None:
        """Run once, for its effect only (its answer is not kept; an error still raises, at the
        latest at `sync()`). Cheaper than `execute`: one cursor serves every such statement."""
        await self._send_blind(stmt.sql(self.dialect), params)

    async def rowcount(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> int:
        cursor = await self.execute(stmt, params)
        await self.sync()
        return int(cursor.rowcount)

    async def fetch(self, stmt: CompiledStatement, params: Mapping[str, Any]) -> list[Any]:
        return await self.fetchall(await self.execute(stmt, params))

    async def send_together(self, parts: Sequence[Update]) -> None:
        """`send` several UPDATEs (PostgreSQL), a few at a time as one statement
        (`farebox.db.compiled.together`), in the order given; a part marked
        `must_change_one` fails its statement (`CheckFailed`) unless it changed exactly one
        row. A part whose row an earlier part of the statement changes starts a new statement:
        within one, the later change of a row would be lost."""
        chunk: list[Update] = []
        for part in parts:
            if len(chunk) == _PARTS_PER_STATEMENT or any(p.row == part.row for p in chunk):
                await self._send_together(chunk)
                chunk = []
            chunk.append(part)
        if chunk:
            await self._send_together(chunk)

    async def _send_together(self, chunk: Sequence[Update]) -> None:
        params = {
            f"u{i}_{name}": value
            for i, part in enumerate(chunk)
            for name, value in part.params.items()
        }
        sql = together(tuple((part.stmt, part.must_change_one) for part in chunk))
        await self._send_blind(sql, params)

    async def execute_in(
        self,
        stmt: CompiledStatement,
        name: str,
        values: Sequence[Any],
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """`execute` with the list parameter `name` bound to `values` (and any other `params`)."""
        return await self._send(*stmt.bind_in(self.dialect, name, values, params))

    async def fetch_in(
        self,
        stmt: CompiledStatement,
        name: str,
        values: Sequence[Any],
        params: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """`execute_in`, then every row."""
        return await self.fetchall(await self.execute_in(stmt, name, values, params))

    async def executemany(self, stmt: CompiledStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run for each row (on PostgreSQL one statement for a bulk INSERT); no rows, no-op."""
        if not rows:
            return
        bulk = stmt.bulk(self.dialect, rows)
        if bulk is None:
            await self._send_many(stmt.sql(self.dialect), rows)
        else:
            await self._send_blind(*bulk)


class SyncSession(Session):
    """A session on the DBAPI connection of a SQLAlchemy transaction (see `sync_session`)."""

    def __init__(self, conn: Connection) -> None:
        self.dialect = conn.dialect.name
        raw: Any = conn.connection.dbapi_connection
        self._raw = raw
        self._pipeline: Any = None
        self._shared: Any = raw.cursor()  # for statements whose answer is unused

    async def _send(self, sql: str, params: Any) -> Any:
        cursor = self._raw.cursor()
        with _checks():
            cursor.execute(sql, params)
        return cursor

    async def _send_blind(self, sql: str, params: Any) -> None:
        with _checks():
            self._shared.execute(sql, params)

    async def _send_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with _checks():
            self._shared.executemany(sql, rows)

    async def fetchall(self, cursor: Any) -> list[Any]:
        return list(cursor.fetchall())

    async def _sync_once(self) -> None:
        if self._pipeline is not None:
            self._pipeline.sync()

    def _driver_connection(self) -> Any:
        return self._raw


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
        session.pipelined = True
        yield session


class AsyncSession(Session):
    """A session on a psycopg `AsyncConnection` of its own, kept in pipeline mode for its
    life, that runs one transaction after another: `begin` ... `commit`, or statements sent
    with no BEGIN and one `sync` at their end, which PostgreSQL runs as one implicit
    transaction that the sync commits (or rolls back, when one of them failed).

    In autocommit mode with BEGIN and COMMIT sent as statements, a transaction whose statements
    need no answer on the way costs one round trip. psycopg's own `transaction()` and
    `pipeline()` blocks each wait for an answer on entry or exit: BEGIN, COMMIT and leaving the
    pipeline made three more round trips per transaction.
    """

    dialect = "postgresql"
    pipelined = True

    def __init__(self, conn: Any, pipeline: Any, pipeline_block: Any) -> None:
        self._conn = conn
        self._shared = conn.cursor()
        self._pipeline = pipeline
        self._pipeline_block = pipeline_block  # left open (when dropped, it leaves the pipeline)

    @classmethod
    async def connect(cls, conninfo: str, synchronous_commit: bool = True) -> AsyncSession:
        """`synchronous_commit=False`: commits do not wait for the disk (PostgreSQL's setting of
        that name, for this connection only)."""
        import psycopg  # only a gateway on PostgreSQL loads it (see `_checks`)

        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        if not synchronous_commit:
            await conn.execute("SET synchronous_commit = off")
        block = conn.pipeline()
        return cls(conn, await block.__aenter__(), block)

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed or self._conn.broken)

    def close(self) -> None:
        """Close the socket: needs no event loop (the one that opened it may be gone)."""
        self._conn.pgconn.finish()
        # Leave the pipeline block now (it fails at once on the closed socket, without waiting):
        # left for the garbage collector, it would log an error while leaving.
        leaving = self._pipeline_block.__aexit__(None, None, None)
        with contextlib.suppress(Exception):
            leaving.send(None)
        leaving.close()

    async def begin(self) -> None:
        await self._send("BEGIN", None)

    async def commit(self) -> None:
        await self._send("COMMIT", None)
        await self.sync()

    async def rollback(self) -> None:
        await self._send("ROLLBACK", None)  # outside a transaction, only a warning
        await self.sync()

    async def _send(self, sql: str, params: Any) -> Any:
        cursor = self._conn.cursor()
        with _checks():
            await cursor.execute(sql, params)
        return cursor

    async def _send_blind(self, sql: str, params: Any) -> None:
        with _checks():
            await self._shared.execute(sql, params)

    async def _send_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with _checks():
            await self._shared.executemany(sql, rows)

    async def fetchall(self, cursor: Any) -> list[Any]:
        return list(await cursor.fetchall())

    async def _sync_once(self) -> None:
        await self._pipeline.sync()

    def _driver_connection(self) -> Any:
        return self._conn


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
