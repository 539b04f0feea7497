"""The top-level fields of an Anthropic Messages body that farebox reads, as pydantic models.

They check the request's shape before anything else (types, required fields, bounds) and are
what /openapi.json publishes (api/wire/chat.py extends them). Everything else passes through:
the native body goes to an Anthropic upstream as the customer wrote it, never re-serialised
from these models. Each content block is then read by the translator (front_request.py), which
knows every block type and names the block at fault (`messages.0.content.1.source`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from farebox.validation import validate

_READ_ONLY = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})


class CountTokensFields(BaseModel):
    """What POST /v1/messages/count_tokens reads (the rest is ignored)."""

    model_config = _READ_ONLY

    model: Annotated[str, Field(min_length=1, description="A model id from GET /v1/models.")]
    messages: Annotated[list[Any], Field(min_length=1)]
    system: str | list[Any] | None = None
    tools: list[Any] | None = None


class MessagesFields(CountTokensFields):
    """What POST /v1/messages reads (the rest is passed through)."""

    max_tokens: Annotated[StrictInt, Field(ge=1)]
    stream: StrictBool | None = None
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


def read_messages_fields(body: dict[str, Any]) -> MessagesFields:
    """`body`'s read fields, or a 400 naming the first field at fault."""
    return validate(MessagesFields, body)


def read_count_tokens_fields(body: dict[str, Any]) -> CountTokensFields:
    return validate(CountTokensFields, body)
