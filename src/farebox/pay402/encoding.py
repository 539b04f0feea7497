"""Wire encodings the 402 schemes share: base64url without padding, JCS (RFC 8785) JSON,
RFC 3339 times, and keys derived from the instance secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

MAX_TOKEN_CHARS = 8192
"""A credential, challenge request or receipt longer than this is refused before decoding
(the Payment draft asks servers to take at least 4 KB)."""


class DecodeError(ValueError):
    """Bytes or text that are not what the scheme says they must be."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; standard base64's `+/` are accepted too."""
    if len(text) > MAX_TOKEN_CHARS:
        raise DecodeError("too long")
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("not base64url") from exc


def jcs(value: Any) -> bytes:
    """JSON Canonicalization Scheme (RFC 8785): sorted keys, no whitespace, fixed escapes."""
    return bytes(rfc8785.dumps(value))


def jcs_b64url(value: Any) -> str:
    return b64url(jcs(value))


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse bytes that must hold one JSON object."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise DecodeError(f"{what} is not a JSON object")
    return value


def rfc3339(when: float) -> str:
    """`2026-12-05T12:00:00Z` (whole seconds, UTC)."""
    return datetime.fromtimestamp(int(when), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    if len(text) > 64:
        raise DecodeError("not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise DecodeError("not an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        raise DecodeError("an RFC 3339 time needs a zone")
    return parsed.timestamp()


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the instance secret: another server (another
    secret) can neither mint nor verify ours."""
    return hmac.new(
        secret.encode(), b"farebox pay402\x00" + purpose.encode(), hashlib.sha256
    ).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def preimage_bytes(text: object) -> bytes:
    """A Lightning preimage: 64 hex characters (a `0x` prefix and upper case are tolerated)."""
    if not isinstance(text, str):
        raise DecodeError("the preimage must be a hex string")
    cleaned = text.strip().lower().removeprefix("0x")
    if len(cleaned) != 64:
        raise DecodeError("the preimage must be 32 bytes (64 hex characters)")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise DecodeError("the preimage is not hex") from exc
