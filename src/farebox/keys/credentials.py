"""Account credentials: the public account id and the secret `credit_id` (stored only hashed).

An account has two names. Its **account id** (`acct_…`, random, never derived from anything
secret) is its ledger account id and appears wherever an account must be named without granting
power over it: history, top-up invoices, logs, admin output, grants. Its **credit_id** is a
password: whoever holds it manages the account (keys, auto top-up, rotation). The database keeps
only its SHA-256, so a copy of the database cannot act as any account.

Why no slow KDF (bcrypt, scrypt, argon2): those protect low-entropy secrets people choose. A
credit_id is a random UUID4 (122 random bits, PPQ's shape), so inverting its SHA-256 means
trying ~2^121 candidates on average, out of reach with any hardware; a slow hash would only add
latency to every x-credit-id request.

A credit_id is looked up in the database on every use (never cached), so after a rotation the
old one is refused at once by every replica, and the dashboard sessions opened with it end.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

from sqlalchemy import Connection, delete, insert, select, update

from farebox.db.schema import account_credentials, accounts, dashboard_sessions

ACCOUNT_ID_PREFIX = "acct_"
# Longest credit_id worth hashing: ours are 36 characters; anything far longer is not one.
MAX_CREDIT_ID_CHARS = 128


def new_credit_id() -> str:
    return str(uuid.uuid4())


def new_account_id() -> str:
    """The public id: `acct_` and 24 random hex characters (96 bits; only uniqueness matters)."""
    return ACCOUNT_ID_PREFIX + secrets.token_hex(12)


def hash_credit_id(credit_id: str) -> str:
    return hashlib.sha256(credit_id.encode()).hexdigest()


def plausible_credit_id(value: str) -> bool:
    return 0 < len(value) <= MAX_CREDIT_ID_CHARS


def insert_credentials(conn: Connection, account_id: str, credit_id: str) -> None:
    now = time.time()
    conn.execute(
        insert(account_credentials).values(
            account_id=account_id,
            credit_hash=hash_credit_id(credit_id),
            created_at=now,
            rotated_at=None,
        )
    )


def account_for_credit(conn: Connection, credit_id: str) -> str | None:
    """The account id whose credit_id this is, or None."""
    if not plausible_credit_id(credit_id):
        return None
    row = conn.execute(
        select(account_credentials.c.account_id).where(
            account_credentials.c.credit_hash == hash_credit_id(credit_id)
        )
    ).first()
    return None if row is None else str(row[0])


def is_customer_account(conn: Connection, account_id: str) -> bool:
    """True for a customer's public account id (never for the ledger's system accounts)."""
    if not 0 < len(account_id) <= 64 or "\x00" in account_id:
        return False
    row = conn.execute(select(accounts.c.kind).where(accounts.c.id == account_id)).first()
    return row is not None and row[0] == "customer"


def rotate_credit(conn: Connection, credit_id: str) -> tuple[str, str] | None:
    """Replace `credit_id` with a new one: (account id, new credit_id), or None when `credit_id`
    names no account (also when a concurrent rotation replaced it first)."""
    if not plausible_credit_id(credit_id):
        return None
    fresh = new_credit_id()
    col = account_credentials.c
    row = conn.execute(
        update(account_credentials)
        .where(col.credit_hash == hash_credit_id(credit_id))
        .values(credit_hash=hash_credit_id(fresh), rotated_at=time.time())
        .returning(col.account_id)
    ).first()
    if row is None:
        return None
    # Whoever signed in to the dashboard with the old credit_id is signed out with it.
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.account_id == row[0]))
    return str(row[0]), fresh


def account_named(conn: Connection, public_id_or_credit_id: str) -> str | None:
    """The account a command line names, by its public id or by its credit_id."""
    if is_customer_account(conn, public_id_or_credit_id):
        return public_id_or_credit_id
    return account_for_credit(conn, public_id_or_credit_id)
