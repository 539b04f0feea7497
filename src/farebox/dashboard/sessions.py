"""Server-side sign-in sessions, in the database so every replica shares them.

The browser's cookie holds a random id (256 bits); the table keeps only its SHA-256, so a copy of
the database signs nobody in. A session names what it may do: a customer session names one
account (never its credit_id, which is checked once at sign-in and not kept); an operator session
carries a fingerprint of the admin token it was opened with, so changing FAREBOX_ADMIN_TOKEN ends
every console session. Each session has a CSRF token of its own for the forms and calls it makes.

A session ends `max_s` after sign-in whatever happens, or after `idle_s` without a request that
counts as activity (the pages' own background polling does not). Signing out deletes the row;
so does rotating the account's credit_id (keys/credentials.py). Expired rows are deleted when
someone signs in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, or_, select, update

from farebox.db.database import Database
from farebox.db.schema import dashboard_sessions

CUSTOMER = "customer"
OPERATOR = "operator"
MAX_TOKEN_CHARS = 100  # ours are 43; anything longer is not one of ours


@dataclass(frozen=True, slots=True)
class Session:
    kind: str
    account_id: str | None
    csrf_token: str
    created_at: float
    last_seen_at: float
    expires_at: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def admin_fingerprint(admin_token: str) -> str:
    """What an operator session remembers of the admin token (not the token)."""
    return hmac.new(admin_token.encode(), b"farebox console session", hashlib.sha256).hexdigest()


def _row(row: Row[Any]) -> Session:
    return Session(
        kind=row.kind,
        account_id=row.account_id,
        csrf_token=row.csrf_token,
        created_at=float(row.created_at),
        last_seen_at=float(row.last_seen_at),
        expires_at=float(row.expires_at),
    )


def _insert(conn: Connection, values: dict[str, Any], idle_before: float) -> None:
    now = values["created_at"]
    col = dashboard_sessions.c
    conn.execute(
        delete(dashboard_sessions).where(or_(col.expires_at <= now, col.last_seen_at < idle_before))
    )
    conn.execute(insert(dashboard_sessions).values(**values))


def _find(conn: Connection, id_hash: str) -> tuple[Session, str | None] | None:
    row = conn.execute(
        select(dashboard_sessions).where(dashboard_sessions.c.id_hash == id_hash)
    ).first()
    return None if row is None else (_row(row), row.admin_check)


def _touch(conn: Connection, id_hash: str, now: float) -> None:
    conn.execute(
        update(dashboard_sessions)
        .where(dashboard_sessions.c.id_hash == id_hash)
        .values(last_seen_at=now)
    )


def _delete(conn: Connection, id_hash: str) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id_hash == id_hash))


class SessionStore:
    def __init__(
        self,
        db: Database,
        idle_s: float,
        max_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock
        # last_seen_at is written at most this often per session: a minute's precision is
        # plenty for an idle limit of an hour, and saves a write on most page loads.
        self.touch_every_s = min(60.0, idle_s / 10)

    async def open(
        self, kind: str, account_id: str | None = None, admin_token: str | None = None
    ) -> tuple[str, Session]:
        """A new session: (the token for the cookie, the session)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(kind, account_id, secrets.token_urlsafe(32), now, now, now + self.max_s)
        values = {
            "id_hash": hash_token(token),
            "kind": kind,
            "account_id": account_id,
            "csrf_token": session.csrf_token,
            "admin_check": admin_fingerprint(admin_token) if admin_token else None,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": session.expires_at,
        }
        await self.db.write(_insert, values, now - self.idle_s)
        return token, session

    async def load(
        self,
        token: str | None,
        kind: str,
        admin_token: str | None = None,
        activity: bool = True,
    ) -> Session | None:
        """The live session of `kind` the token names, or None. `activity` False: a background
        poll, which neither counts as activity nor keeps an idle session alive."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        id_hash = hash_token(token)
        found = await self.db.read(_find, id_hash)
        if found is None:
            return None
        session, admin_check = found
        now = self.clock()
        if session.kind != kind or now >= session.expires_at:
            return None
        if now - session.last_seen_at >= self.idle_s:
            await self.db.write(_delete, id_hash)
            return None
        if kind == OPERATOR and (
            not admin_token
            or admin_check is None
            or not hmac.compare_digest(admin_check, admin_fingerprint(admin_token))
        ):
            return None
        if activity and now - session.last_seen_at >= self.touch_every_s:
            await self.db.write(_touch, id_hash, now)
        return session

    async def close(self, token: str | None) -> None:
        """Sign out: the row is deleted, so the token is refused on every replica at once."""
        if token and len(token) <= MAX_TOKEN_CHARS:
            await self.db.write(_delete, hash_token(token))
