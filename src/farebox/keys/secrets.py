"""Key material: generating API keys, hashing them for lookup, encrypting them at rest."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from farebox.db.schema import meta

KEY_PREFIX = "sk-"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(36)


def new_key_id() -> str:
    """24 hex characters, the shape of PPQ's `_id`."""
    return secrets.token_hex(12)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_hint(raw: str) -> str:
    return raw[:7] + "…" + raw[-4:]


class KeyCipher:
    """Encrypts API keys at rest (Fernet: AES-128-CBC + HMAC-SHA256), so `show_key` can return them."""

    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(b"farebox api-key encryption\x00" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, raw: str) -> str:
        return self._fernet.encrypt(raw.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "stored API key cannot be decrypted: FAREBOX_SECRET_KEY differs from the one "
                "the key was created with"
            ) from exc


def load_or_create_secret(conn: Connection) -> str:
    """The instance secret kept in the database, created on first start.

    Operators should set FAREBOX_SECRET_KEY instead, so a copy of the database alone does not
    reveal API keys; this fallback keeps the embedded default working with zero setup.
    """
    candidate = secrets.token_urlsafe(32)
    # Several replicas may start at once on a new database: the first insert wins, all read it.
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        dialect_insert(meta).values(key="secret_key", value=candidate).on_conflict_do_nothing()
    )
    return str(conn.execute(select(meta.c.value).where(meta.c.key == "secret_key")).scalar_one())
