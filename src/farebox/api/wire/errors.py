"""The error envelope every 4xx and 5xx answer carries (OpenAI's shape)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: str = Field(description="A sentence a person can act on.")
    type: str = Field(description="OpenAI's error type, e.g. invalid_request_error.")
    param: str | None = Field(description="The field or parameter at fault, if one is.")
    code: str | None = Field(description="A stable machine-readable code, e.g. invalid_api_key.")


class ErrorEnvelope(BaseModel):
    """`{"error": {...}}`. A 402 also repeats balance, reserved and available (USD) at the top
    level and in `error`, and may carry payment challenges in `WWW-Authenticate`."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


def is_envelope(body: Any) -> bool:
    """Whether a decoded response body is our error envelope (used by the fuzzing gate)."""
    try:
        ErrorEnvelope.model_validate(body)
    except ValueError:
        return False
    return True
