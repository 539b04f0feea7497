"""Domain errors in Anthropic's envelope: `{"type": "error", "error": {"type", "message"}}`."""

from __future__ import annotations

from typing import Any

from farebox.errors import FareboxError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_body(exc: FareboxError, request_id: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type(exc.status), "message": exc.message}
    if exc.code:
        error["code"] = exc.code  # farebox's code (e.g. insufficient_funds), as on the OpenAI front
    if exc.extra:
        error.update(exc.extra)  # a 402 also says balance, reserved and available
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id:
        body["request_id"] = request_id
    return body
