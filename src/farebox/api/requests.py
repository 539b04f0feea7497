"""Reading what a request carries: its body (size-limited while streaming), keys, query values."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from farebox.errors import InvalidRequest, PayloadTooLarge, Unauthorized
from farebox.inputs import MAX_NUMBER_DIGITS, ascii_whole_number, content_length, parse_json_object


async def read_body(request: Request, limit: int) -> bytes:
    declared = content_length(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    return parse_json_object(await read_body(request, limit))


def bearer_key(request: Request) -> str | None:
    """The customer's API key: `Authorization: Bearer sk-...` or `api-key:` (PPQ accepts both)."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("api-key") or request.headers.get("x-api-key")
    return key.strip() if key else None


def require_key(request: Request) -> str:
    key = bearer_key(request)
    if not key:
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer sk-...' or an 'api-key' header. "
            "Create an account and key with POST /accounts/create."
        )
    return key


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"{name} must be true or false", param=name)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = ascii_whole_number(raw.removeprefix("-"), MAX_NUMBER_DIGITS)
    if value is None:
        raise InvalidRequest(f"{name} must be a whole number", param=name)
    if raw.startswith("-"):
        value = -value
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", param=name)
    return value
