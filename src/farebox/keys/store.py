"""API keys: rows, validation, the in-process cache used on every request, and CRUD."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from farebox.db.database import Database
from farebox.db.schema import accounts, api_keys
from farebox.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from farebox.inputs import plausible_id
from farebox.keys import credentials
from farebox.keys.periods import RESET_PERIODS, next_reset, period_key
from farebox.keys.secrets import KeyCipher, hash_key, key_hint, new_api_key, new_key_id
from farebox.ledger import ops as ledger_ops
from farebox.ledger.types import KeyBudget
from farebox.limits.scopes import dump_scope, load_scope
from farebox.money import read_usd

log = logging.getLogger("farebox.keys")

MIN_LIMIT_NANOS = 10_000_000  # $0.01
RPM_LIMIT_MAX = 1_000_000
TPM_LIMIT_MAX = 10_000_000_000
NAME_MAX = 25
RESET_NEEDS_LIMIT = (
    "reset_period needs a usage_limit_usd: send a limit too, or leave reset_period out"
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    account_id: str
    name: str
    hint: str
    usage_limit: int | None
    reset_period: str | None
    generation: int
    expire_at: float | None
    created_at: float
    updated_at: float
    revoked_at: float | None
    period_key: str = ""
    period_posted: int = 0
    period_pending: int = 0
    total_posted: int = 0
    encrypted: str = ""
    rpm_limit: int | None = None  # requests per minute (limits/), None: no limit
    tpm_limit: int | None = None  # tokens per minute, counted at settlement
    allowed_models: tuple[str, ...] | None = None  # ids or fnmatch patterns; None: every model

    @property
    def restricted(self) -> bool:
        """True when requests of this key must pass its rate limits or model scope."""
        return not (
            self.rpm_limit is None and self.tpm_limit is None and self.allowed_models is None
        )

    def budget(self, now: float | None = None) -> KeyBudget:
        # A key that never resets has one period: no clock to read (every paid request asks).
        when = (
            _NO_PERIOD
            if self.reset_period is None
            else datetime.fromtimestamp(now or time.time(), UTC)
        )
        return KeyBudget(
            self.id, period_key(self.reset_period, self.generation, when), self.generation
        )

    def current_period_usage(self, now: float | None = None) -> int:
        when = datetime.fromtimestamp(now or time.time(), UTC)
        current = period_key(self.reset_period, self.generation, when)
        return self.period_posted if self.period_key == current else 0

    def reset_at(self, now: float | None = None) -> datetime | None:
        return next_reset(self.reset_period, datetime.fromtimestamp(now or time.time(), UTC))

    def is_expired(self, now: float) -> bool:
        return self.expire_at is not None and self.expire_at <= now


_NO_PERIOD = datetime(1970, 1, 1, tzinfo=UTC)  # any time: period_key ignores it without a period


def _row_to_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        hint=row.key_hint,
        usage_limit=None if row.usage_limit is None else int(row.usage_limit),
        reset_period=row.reset_period,
        generation=int(row.period_generation),
        expire_at=row.expire_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoked_at=row.revoked_at,
        period_key=row.period_key,
        period_posted=int(row.period_posted),
        period_pending=int(row.period_pending),
        total_posted=int(row.total_posted),
        encrypted=row.key_encrypted,
        rpm_limit=None if row.rpm_limit is None else int(row.rpm_limit),
        tpm_limit=None if row.tpm_limit is None else int(row.tpm_limit),
        allowed_models=load_scope(row.allowed_models),
    )


# ---------------------------------------------------------------------------------------------
# Validation of customer input (USD amounts, names, periods, dates)


def parse_limit(value: Any) -> int | None:
    if value is None:
        return None
    nanos = read_usd(value, "usage_limit_usd")
    if nanos < MIN_LIMIT_NANOS:
        raise InvalidRequest("usage_limit_usd must be at least 0.01", param="usage_limit_usd")
    if nanos > 10**18:
        raise InvalidRequest("usage_limit_usd is too large", param="usage_limit_usd")
    return nanos


def _per_minute(value: Any, param: str, upper: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(
            f"{param} must be a whole number from 1 to {upper}, or null", param=param
        )
    if not 1 <= value <= upper:
        raise InvalidRequest(f"{param} must be from 1 to {upper}, or null for none", param=param)
    return value


def parse_rpm_limit(value: Any) -> int | None:
    """Requests per minute: a whole number, or None for no limit."""
    return _per_minute(value, "rpm_limit", RPM_LIMIT_MAX)


def parse_tpm_limit(value: Any) -> int | None:
    """Tokens per minute: a whole number, or None for no limit."""
    return _per_minute(value, "tpm_limit", TPM_LIMIT_MAX)


def parse_name(value: Any) -> str:
    if not isinstance(value, str) or not (1 <= len(value.strip()) <= NAME_MAX):
        raise InvalidRequest(f"name must be a string of 1 to {NAME_MAX} characters", param="name")
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise InvalidRequest("name must not contain control characters", param="name")
    return value.strip()


def parse_reset_period(value: Any) -> str | None:
    if value is None:
        return None
    if value not in RESET_PERIODS:
        raise InvalidRequest(
            "reset_period must be one of daily, weekly, monthly, or null", param="reset_period"
        )
    return str(value)


def parse_expire_at(value: Any, now: float) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(
            "expire_at must be an ISO 8601 datetime such as 2027-01-01T00:00:00Z", param="expire_at"
        )
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            "expire_at must be an ISO 8601 datetime such as 2027-01-01T00:00:00Z", param="expire_at"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ts = when.timestamp()
    if ts <= now:
        raise InvalidRequest("expire_at must be in the future", param="expire_at")
    return ts


# ---------------------------------------------------------------------------------------------
# Transaction functions


def _lock_account(conn: Connection, account_id: str) -> None:
    """Serialise key changes per account, so two requests cannot both take a free name.

    Row lock on the account (PostgreSQL; SQLite writers are serialised already). The ledger
    locks accounts before keys too, so the lock order stays the same.
    """
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())


def _name_taken(conn: Connection, account_id: str, name: str, except_id: str | None) -> bool:
    stmt = (
        select(func.count())
        .select_from(api_keys)
        .where(api_keys.c.account_id == account_id)
        .where(api_keys.c.name == name)
        .where(api_keys.c.revoked_at.is_(None))
    )
    if except_id is not None:
        stmt = stmt.where(api_keys.c.id != except_id)
    return int(conn.execute(stmt).scalar_one()) > 0


def insert_key(
    conn: Connection,
    cipher: KeyCipher,
    account_id: str,
    name: str,
    usage_limit: int | None,
    reset_period: str | None,
    expire_at: float | None,
    *,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    allowed_models: tuple[str, ...] | None = None,
) -> tuple[ApiKey, str]:
    _lock_account(conn, account_id)
    if _name_taken(conn, account_id, name, None):
        raise Conflict(f"an active key named {name!r} already exists on this account", param="name")
    raw = new_api_key()
    now = time.time()
    key_id, encrypted, hint = new_key_id(), cipher.encrypt(raw), key_hint(raw)
    values: dict[str, Any] = {
        "id": key_id,
        "account_id": account_id,
        "name": name,
        "key_hash": hash_key(raw),
        "key_encrypted": encrypted,
        "key_hint": hint,
        "usage_limit": usage_limit,
        "reset_period": reset_period,
        "period_generation": 0,
        "period_key": "",
        "period_posted": 0,
        "period_pending": 0,
        "total_posted": 0,
        "expire_at": expire_at,
        "created_at": now,
        "updated_at": now,
        "revoked_at": None,
    }
    if rpm_limit is not None or tpm_limit is not None or allowed_models is not None:
        # named only when set: a key without them is inserted as the release before wrote it
        values.update(
            rpm_limit=rpm_limit, tpm_limit=tpm_limit, allowed_models=dump_scope(allowed_models)
        )
    conn.execute(insert(api_keys).values(**values))
    key = ApiKey(
        id=key_id,
        account_id=account_id,
        name=name,
        hint=hint,
        usage_limit=usage_limit,
        reset_period=reset_period,
        generation=0,
        expire_at=expire_at,
        created_at=now,
        updated_at=now,
        revoked_at=None,
        encrypted=encrypted,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        allowed_models=allowed_models,
    )
    return key, raw


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A new account: its public id, its secret credit_id and first key (both shown once)."""

    account_id: str
    credit_id: str
    key: ApiKey
    api_key: str


def create_account_with_key(conn: Connection, cipher: KeyCipher) -> NewAccount:
    account_id = credentials.new_account_id()
    credit_id = credentials.new_credit_id()
    ledger_ops.create_customer_account(conn, account_id)
    credentials.insert_credentials(conn, account_id, credit_id)
    key, raw = insert_key(conn, cipher, account_id, "default", None, None, None)
    return NewAccount(account_id, credit_id, key, raw)


def _load_by_hash(conn: Connection, digest: str) -> ApiKey | None:
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest)).first()
    return _row_to_key(row) if row is not None else None


def _load_one(conn: Connection, account_id: str, key_id: str) -> ApiKey:
    row = None
    if plausible_id(key_id, 32):
        row = conn.execute(
            select(api_keys)
            .where(api_keys.c.id == key_id)
            .where(api_keys.c.account_id == account_id)
        ).first()
    if row is None:
        raise NotFound(
            f"No API key with id {key_id[:40]!r} on this account. List your keys with GET /keys.",
            param="id",
        )
    return _row_to_key(row)


def _list(conn: Connection, account_id: str, include_disabled: bool) -> list[ApiKey]:
    stmt = select(api_keys).where(api_keys.c.account_id == account_id)
    if not include_disabled:
        stmt = stmt.where(api_keys.c.revoked_at.is_(None))
    return [_row_to_key(r) for r in conn.execute(stmt.order_by(api_keys.c.created_at)).fetchall()]


def _patch(conn: Connection, account_id: str, key_id: str, changes: dict[str, Any]) -> ApiKey:
    key = _load_one(conn, account_id, key_id)
    if key.revoked_at is not None:
        raise InvalidRequest(
            "This API key has been revoked and can no longer be changed. Create a new one with "
            "POST /keys."
        )
    values: dict[str, Any] = {"updated_at": time.time()}
    if "name" in changes:
        _lock_account(conn, account_id)
        if _name_taken(conn, account_id, changes["name"], key_id):
            raise Conflict(
                f"an active key named {changes['name']!r} already exists on this account",
                param="name",
            )
        values["name"] = changes["name"]
    if "usage_limit" in changes:
        values["usage_limit"] = changes["usage_limit"]
    if "expire_at" in changes:
        values["expire_at"] = changes["expire_at"]
    for per_minute in ("rpm_limit", "tpm_limit"):
        if per_minute in changes:
            values[per_minute] = changes[per_minute]
    if "allowed_models" in changes:
        values["allowed_models"] = dump_scope(changes["allowed_models"])
    if "usage_limit" in changes and changes["usage_limit"] is None and key.reset_period:
        # A reset period needs a limit: removing the limit removes the period too.
        changes = {"reset_period": None, **changes}
    if "reset_period" in changes:
        period = changes["reset_period"]
        limit = changes.get("usage_limit", key.usage_limit)
        if period is not None and limit is None:
            raise InvalidRequest(RESET_NEEDS_LIMIT, param="reset_period")
        values["reset_period"] = period
        if period != key.reset_period:
            # A new generation names a new counter period: usage starts again from $0. Sending
            # the period the key already has (a client PATCHing the whole object) is no change.
            values["period_generation"] = api_keys.c.period_generation + 1
            values["period_posted"] = 0
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
    return _load_one(conn, account_id, key_id)


def _revoke(conn: Connection, account_id: str, key_id: str) -> ApiKey:
    key = _load_one(conn, account_id, key_id)
    if key.revoked_at is None:
        now = time.time()
        conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now, updated_at=now)
        )
    return _load_one(conn, account_id, key_id)


def _missing_credit_id(param: str) -> Unauthorized:
    return Unauthorized(
        "Missing x-credit-id header: send your account's credit_id (from POST /accounts/create).",
        param=param,
    )


def _unknown_credit_id(param: str) -> Unauthorized:
    return Unauthorized(
        f"Unknown credit_id in {param}: send the credit_id that POST /accounts/create returned "
        "(or the one POST /credits/rotate issued since).",
        param=param,
    )


# ---------------------------------------------------------------------------------------------


# Tells the other replicas that cached keys changed ("key:<id>" or "account:<id>"); see
# keys/broadcast.py. None: a single process, whose own cache is dropped at once anyway.
Announce = Callable[[str], Awaitable[None]]


class KeyStore:
    """Keys for the request path (cached by hash) and for account management."""

    def __init__(
        self,
        db: Database,
        cipher: KeyCipher,
        cache_ttl_s: float = 1.0,
        announce: Announce | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.cache_ttl_s = cache_ttl_s
        self.announce = announce
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def authenticate(self, raw: str) -> ApiKey:
        """The live key for a raw API key, or Unauthorized with the reason."""
        digest = hash_key(raw)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.cache_ttl_s:
            key = hit[1]
        else:
            key = await self.db.read(_load_by_hash, digest)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = (now, key)
        if key is None:
            raise Unauthorized("Invalid API key. Check the key, or create one with POST /keys.")
        if key.revoked_at is not None:
            raise Unauthorized("This API key has been revoked. Create a new one with POST /keys.")
        if key.is_expired(time.time()):
            raise Unauthorized("This API key has expired. Create a new one with POST /keys.")
        return key

    async def find(self, raw: str) -> ApiKey | None:
        """The key for a raw API key, live or not (for reading its history; never for auth)."""
        return await self.db.read(_load_by_hash, hash_key(raw))

    def invalidate(self, key_id: str | None = None) -> None:
        if key_id is None:
            self._cache.clear()
            return
        for digest, (_, key) in list(self._cache.items()):
            if key is not None and key.id == key_id:
                del self._cache[digest]

    def invalidate_account(self, account_id: str) -> None:
        for digest, (_, key) in list(self._cache.items()):
            if key is not None and key.account_id == account_id:
                del self._cache[digest]

    def drop(self, change: str) -> None:
        """Apply a change another replica announced: "key:<id>", "account:<id>" or "all"."""
        kind, _, ident = change.partition(":")
        if kind == "key" and ident:
            self.invalidate(ident)
        elif kind == "account" and ident:
            self.invalidate_account(ident)
        else:
            self.invalidate()

    async def _changed(self, change: str) -> None:
        self.drop(change)
        if self.announce is not None:
            await self.announce(change)

    async def require_account(self, credit_id: str | None, param: str = "x-credit-id") -> str:
        """Authenticate account management by `x-credit-id` (or a `credit_id` parameter):
        the public account id it names. Looked up every time (never cached), so a rotated
        credit_id stops at once on every replica."""
        if not credit_id:
            raise _missing_credit_id(param)
        account_id = await self.account_for_credit(credit_id)
        if account_id is None:
            raise _unknown_credit_id(param)
        return account_id

    async def account_for_credit(self, credit_id: str) -> str | None:
        """The public account id a credit_id names, or None."""
        return await self.db.read(credentials.account_for_credit, credit_id)

    async def is_customer(self, account_id: str) -> bool:
        """True for a customer's public account id (never for the ledger's system accounts)."""
        return await self.db.read(credentials.is_customer_account, account_id)

    async def rotate_credit(self, credit_id: str | None) -> tuple[str, str]:
        """Issue a new credit_id for the account `credit_id` names: (account id, new credit_id).
        The old one is refused from the moment this returns."""
        if not credit_id:
            raise _missing_credit_id("x-credit-id")
        rotated = await self.db.write(credentials.rotate_credit, credit_id)
        if rotated is None:
            raise _unknown_credit_id("x-credit-id")
        await self._changed(f"account:{rotated[0]}")
        return rotated

    async def create_account(self) -> NewAccount:
        return await self.db.write(create_account_with_key, self.cipher)

    async def create(
        self,
        account_id: str,
        name: str,
        usage_limit: int | None,
        reset_period: str | None,
        expire_at: float | None,
        *,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        allowed_models: tuple[str, ...] | None = None,
    ) -> tuple[ApiKey, str]:
        if reset_period is not None and usage_limit is None:
            raise InvalidRequest(RESET_NEEDS_LIMIT, param="reset_period")
        return await self.db.write(
            lambda conn: insert_key(
                conn,
                self.cipher,
                account_id,
                name,
                usage_limit,
                reset_period,
                expire_at,
                rpm_limit=rpm_limit,
                tpm_limit=tpm_limit,
                allowed_models=allowed_models,
            )
        )

    async def list(self, account_id: str, include_disabled: bool) -> list[ApiKey]:
        return await self.db.read(_list, account_id, include_disabled)

    async def get(self, account_id: str, key_id: str) -> ApiKey:
        return await self.db.read(_load_one, account_id, key_id)

    async def patch(self, account_id: str, key_id: str, changes: dict[str, Any]) -> ApiKey:
        key = await self.db.write(_patch, account_id, key_id, changes)
        await self._changed(f"key:{key_id}")
        return key

    async def revoke(self, account_id: str, key_id: str) -> ApiKey:
        key = await self.db.write(_revoke, account_id, key_id)
        await self._changed(f"key:{key_id}")
        return key

    async def reload(self, key_id: str, account_id: str) -> ApiKey:
        self.invalidate(key_id)
        return await self.db.read(_load_one, account_id, key_id)

    def reveal(self, key: ApiKey) -> str | None:
        """The key itself, or None when its stored copy cannot be decrypted (a row written under
        another instance secret): the key still works by its hash, it just cannot be shown."""
        try:
            return self.cipher.decrypt(key.encrypted)
        except ValueError:
            log.warning("key %s cannot be shown: its stored copy does not decrypt", key.id)
            return None
