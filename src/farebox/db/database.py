"""The database handle: one SQLAlchemy Core engine, used from a small pool of worker threads.

Every unit of work is a plain function `fn(conn, *args)` that runs inside one transaction in a
worker thread (`await db.write(fn, ...)` / `await db.read(fn, ...)`). One thread hop per
transaction instead of one per statement keeps the hot path cheap, and the same code runs on
SQLite and PostgreSQL.

The ledger's hot path is written as session coroutines `fn(session, *args)` (see
`farebox.db.session`) and run with `await db.transact(fn, ...)`: on SQLite synchronously on the
event loop's thread, on PostgreSQL on an async psycopg connection on the loop itself.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, delete, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from farebox.db.schema import meta
from farebox.db.session import AsyncSession, run_in, said_by_server

P = ParamSpec("P")
T = TypeVar("T")

_RETRIES = 5
_IDLE_ASYNC_CONNECTIONS = 4
CHECKPOINT_INTERVAL_S = 1.0
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# The meta row a migration writes when it replaced secret values: see Database.scrub.
SCRUB_REQUEST = "scrub_requested"


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` / `postgres://` URLs and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if name in ("", ":memory:") or name.startswith("file:"):
        return None
    return Path(name)


def build_engine(url: str, pool_size: int = 4) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _null_as_is(value: None) -> None:
    return value


def _blob_as_is(value: bytes) -> bytes:
    return value


def _configure_sqlite(engine: Engine) -> None:
    # sqlite3 binds int, float and str directly, but asks None and bytes to adapt themselves:
    # with no adapter registered that is a failed attribute lookup on a type, which builds an
    # AttributeError (~250 ns) for each NULL or blob parameter, about ten per paid request. An
    # adapter that returns the value as it is binds them as before, a dict lookup away.
    sqlite3.register_adapter(type(None), _null_as_is)
    sqlite3.register_adapter(bytes, _blob_as_is)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")  # a rewound WAL is cut to this
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two writers never deadlock on an upgrade.
        # Straight on the driver's connection: this runs once per transaction on the hot path.
        raw = conn.connection.dbapi_connection
        assert raw is not None
        if conn.get_execution_options().get("farebox_read_only"):
            raw.execute("BEGIN")
        else:
            raw.execute("BEGIN IMMEDIATE")


_RETRYABLE = ("deadlock detected", "could not serialize", "database is locked", "busy")


def _is_retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(s in text for s in _RETRYABLE)


def _is_driver_retryable(exc: Exception) -> bool:
    """A deadlock or lock timeout raised by psycopg or sqlite3 themselves (hot-path statements
    run on the driver's cursor, outside SQLAlchemy's exception wrapping)."""
    module = type(exc).__module__
    if not module.startswith(("psycopg", "sqlite3")):
        return False
    text = str(exc).lower()
    return any(s in text for s in _RETRYABLE)


class Database:
    def __init__(self, url: str, threads: int = 4, async_commit: bool = False) -> None:
        """`async_commit`: on PostgreSQL, `transact` (the ledger's holds, settlements and
        renewals) commits without waiting for the disk (`synchronous_commit = off`): a crash of
        the database server may lose its last ~0.6 s of them, never a part of one; `write`
        (money coming in, keys, accounts) always waits. SQLite's WAL commits never wait for
        the disk (`synchronous = NORMAL`)."""
        self.url = normalize_url(url)
        self.async_commit = async_commit
        self.engine = build_engine(self.url, pool_size=threads)
        self.dialect = self.engine.dialect.name  # "sqlite" | "postgresql"
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="farebox-db")
        self._local = threading.local()
        # PostgreSQL sessions for `transact`, bound to the event loop that opened them.
        self._async_idle: list[AsyncSession] = []
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if self.is_sqlite:
            # Commits never checkpoint (that fsyncs); this thread does, off the request path.
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="farebox-wal-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        while not self._stop.wait(CHECKPOINT_INTERVAL_S):
            # PASSIVE copies what the WAL holds without stopping writers, but under steady writes
            # it never catches up, and the WAL is only rewound once a checkpoint has copied
            # everything: it grew by ~40 MB/s under load. RESTART then copies the few frames
            # written meanwhile (writers wait that long, a few ms) and rewinds the WAL.
            self.checkpoint("PASSIVE")
            self.checkpoint("RESTART")

    def checkpoint(self, mode: str = "PASSIVE") -> None:
        """Copy the SQLite WAL into the database file (no-op on PostgreSQL)."""
        if not self.is_sqlite:
            return
        raw = self.engine.raw_connection()  # autocommit (see _configure_sqlite): no BEGIN
        try:
            raw.cursor().execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        except Exception:
            pass  # busy or closing: the next round will do it
        finally:
            raw.close()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def pipelined(self) -> bool:
        """Transactions send statements without waiting for answers (PostgreSQL): see
        `transact(..., at_once=True)`."""
        return not self.is_sqlite

    def _thread_connection(self) -> Connection:
        """Each worker thread keeps one connection: no pool checkout per transaction."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            self._local.conn = conn
        return conn

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in one write transaction, retrying deadlocks and lock timeouts."""
        for attempt in range(_RETRIES):
            conn = self._thread_connection()
            try:
                with conn.begin():
                    return fn(conn, *args)
            except (OperationalError, DBAPIError) as exc:
                if exc.connection_invalidated:
                    self._local.conn = None
                if attempt == _RETRIES - 1 or not _is_retryable(exc):
                    raise
            except Exception as exc:  # the driver's own, from statements run on its cursor
                if attempt == _RETRIES - 1 or not _is_driver_retryable(exc):
                    raise
        raise AssertionError("unreachable")

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.connect() as conn:
            conn = conn.execution_options(farebox_read_only=True)
            with conn.begin():
                return fn(conn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        if self.is_sqlite:
            # SQLite transactions are local and short (tens to hundreds of microseconds): running
            # them on the event loop's own thread is cheaper than handing each one to a worker
            # thread and back, and SQLite takes one writer at a time anyway.
            return self.write_sync(fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self.write_sync, fn, *args)
        )

    async def transact(
        self,
        fn: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        at_once: bool = False,
    ) -> T:
        """Run the session function fn(session, *args) in one write transaction, retrying
        deadlocks and lock timeouts.

        `at_once`: fn sends every statement without waiting for an answer and syncs once, at
        its end. On PostgreSQL no BEGIN or COMMIT is sent then: the statements run as one
        implicit transaction that the sync commits, in one round trip; if one fails on the
        server (a failed check raises `CheckFailed`) none of them is committed.
        """
        if self.is_sqlite:
            return self.transact_sync(fn, *args)
        for attempt in range(_RETRIES):
            session = await self._async_session()
            try:
                if not at_once:
                    await session.begin()
                result = await fn(session, *args)
                if not at_once:
                    await session.commit()
            except Exception as exc:
                if not at_once or said_by_server(exc):
                    await self._async_reset(session, rollback=not at_once)
                else:
                    # The server has the statements sent so far and would commit them at the
                    # next sync: only a closed connection rolls them back.
                    session.close()
                if attempt == _RETRIES - 1 or not _is_driver_retryable(exc):
                    raise
                continue
            except BaseException:  # cancelled mid-transaction: the connection's state is unknown
                session.close()
                raise
            self._async_return(session)
            return result
        raise AssertionError("unreachable")

    def transact_sync(
        self,
        fn: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
    ) -> T:
        """`transact` from synchronous code (tests, the CLI): on the engine, in this thread."""
        result: T = self.write_sync(run_in, fn, *args)
        return result

    async def _async_session(self) -> AsyncSession:
        loop = asyncio.get_running_loop()
        if loop is not self._async_loop:  # a new loop (tests, a restart): the old ones are dead
            self._close_async()
            self._async_loop = loop
        if self._async_idle:
            return self._async_idle.pop()
        url = make_url(self.url).set(drivername="postgresql")
        return await AsyncSession.connect(
            url.render_as_string(hide_password=False), synchronous_commit=not self.async_commit
        )

    async def _async_reset(self, session: AsyncSession, rollback: bool) -> None:
        """After a failed transaction: wait out its batch and, for an explicit transaction
        (`rollback`), roll it back (an implicit one ended, rolled back, with its batch); keep
        the connection if that worked."""
        try:
            await session.recover()
            if rollback:
                await session.rollback()
        except Exception:
            session.close()
        else:
            self._async_return(session)

    def _async_return(self, session: AsyncSession) -> None:
        """Keep a healthy idle session for the next transaction; drop a broken one."""
        if session.closed or len(self._async_idle) >= _IDLE_ASYNC_CONNECTIONS:
            session.close()
        else:
            self._async_idle.append(session)

    def _close_async(self) -> None:
        for session in self._async_idle:
            session.close()
        self._async_idle.clear()

    async def vacuum(self, table: str) -> None:
        """PostgreSQL: reclaim the dead rows of a table whose rows come and go (VACUUM ANALYZE,
        skipped when another process is at it). No-op on SQLite, which reuses freed pages.

        Without it such a table grows by every row it ever held wherever autovacuum is off or
        behind, and each statement on it reads the dead rows: with `holds` at ~13k dead rows a
        paid request at c=1 took 5.4 ms instead of 1.5 ms.
        """
        if self.is_sqlite:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._vacuum_sync, table)

    def _vacuum_sync(self, table: str) -> None:
        with self.engine.connect() as conn:
            raw = conn.execution_options(isolation_level="AUTOCOMMIT").connection.dbapi_connection
            assert raw is not None
            raw.cursor().execute(f'VACUUM (ANALYZE, SKIP_LOCKED) "{table}"')

    def scrub(self) -> None:
        """SQLite: rewrite the file without its free pages (VACUUM) and empty the WAL, so values
        that were deleted or replaced (a moved-out secret, credit_ids replaced by hashes) are
        gone from the files, not merely unreachable. No-op on PostgreSQL (a dump never holds
        dead rows; see the README for file-level copies)."""
        if not self.is_sqlite:
            return
        raw = self.engine.raw_connection()  # autocommit (see _configure_sqlite): VACUUM may run
        try:
            cur = raw.cursor()
            cur.execute("VACUUM")
            for _ in range(50):  # TRUNCATE waits for no reader; retry briefly if one is there
                busy = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy or not busy[0]:
                    break
                time.sleep(0.1)
        finally:
            raw.close()

    def scrub_if_requested(self) -> None:
        """Scrub once if a migration asked for it (meta `scrub_requested`)."""
        if not self.is_sqlite:
            return

        def take_request(conn: Connection) -> bool:
            gone = conn.execute(delete(meta).where(meta.c.key == SCRUB_REQUEST)).rowcount
            return bool(gone)

        if self.write_sync(take_request):
            self.scrub()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self.read_sync, fn, *args)
        )

    def close(self) -> None:
        self._stop.set()
        self._close_async()
        self._executor.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.join(5)
            self.checkpoint("TRUNCATE")
        self.engine.dispose()
