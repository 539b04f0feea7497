"""Key material: generating API keys, hashing them for lookup, encrypting them at rest."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

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
