"""Domain errors. Raised anywhere below the api layer, mapped to HTTP once (api/errors.py).

Each error carries the HTTP status, OpenAI's error `type` and `code`, and a sentence a person can act on.
"""

from __future__ import annotations

import reprlib
from typing import Any

ECHO_CHARS = 40  # the most of a customer's value an error message repeats


class FareboxError(Exception):
    status: int = 400
    type: str = "invalid_request_error"
    code: str | None = None
    retry_after_s: int = 1  # the Retry-After header of a 429 or 503

    def __init__(self, message: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.extra = extra


class InvalidRequest(FareboxError):
    status = 400
    code = "invalid_request"


class PayloadTooLarge(FareboxError):
    status = 413
    code = "payload_too_large"


class Unauthorized(FareboxError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(FareboxError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(FareboxError):
    status = 404
    code = "not_found"


class UnknownModel(NotFound):
    code = "model_not_found"


class UnpricedModel(FareboxError):
    """A model without a sale price is refused, never served free by accident."""

    status = 400
    code = "model_not_priced"


class Conflict(FareboxError):
    status = 409
    code = "conflict"


class InsufficientFunds(FareboxError):
    """402: not even the minimum could be held. `extra` carries balance/reserved/available in USD."""

    status = 402
    type = "insufficient_quota"
    code = "insufficient_funds"


class KeyLimitReached(FareboxError):
    status = 402
    type = "insufficient_quota"
    code = "key_limit_reached"


class RateLimited(FareboxError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class UpstreamError(FareboxError):
    """Every route for a model failed before producing output. Nothing was charged."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


def _echo_repr() -> reprlib.Repr:
    echo = reprlib.Repr()
    echo.maxlevel, echo.maxdict, echo.maxlist, echo.maxother = 2, 3, 3, ECHO_CHARS
    return echo


_ECHO = _echo_repr()  # configured once, never changed


def quoted(value: object, limit: int = ECHO_CHARS) -> str:
    """`value` as an error message may repeat it: repr'd and cut to about `limit` characters, so a
    customer never gets a 100 KB echo back nor makes us repr a deeply nested structure."""
    text = repr(value[: limit + 1]) if isinstance(value, str) else _ECHO.repr(value)
    return text if len(text) <= limit + 2 else text[: limit + 1] + "…"
