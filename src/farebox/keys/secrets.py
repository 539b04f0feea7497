"""Key material: generating API keys, hashing them for lookup, encrypting them at rest."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from farebox import optional

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
    """Encrypts API keys at rest (Fernet: AES-128-CBC + HMAC-SHA256), so `show_key` can return them.

    The key is derived at once; cryptography is loaded on the first encrypt or decrypt (a
    gateway that only authenticates keys, by their hash, never loads it)."""

    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(b"farebox api-key encryption\x00" + secret.encode()).digest()
        self._key = base64.urlsafe_b64encode(digest)
        self._built: Any = None

    def _fernet(self) -> Any:
        if self._built is None:
            self._built = optional.fernet().Fernet(self._key)
        return self._built

    def encrypt(self, raw: str) -> str:
        return str(self._fernet().encrypt(raw.encode()).decode())

    def decrypt(self, token: str) -> str:
        try:
            return str(self._fernet().decrypt(token.encode()).decode())
        except optional.fernet().InvalidToken as exc:
            raise ValueError(
                "stored API key cannot be decrypted: FAREBOX_SECRET_KEY differs from the one "
                "the key was created with"
            ) from exc
