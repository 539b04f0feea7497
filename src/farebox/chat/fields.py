"""The fields of an OpenAI chat body that billing reads, as a pydantic model (and a quicker
check for the usual bodies, which accepts only what the model accepts).

Only these are validated (and only for reading): the body itself is sent upstream as the
customer wrote it, unknown fields included, never re-serialised from this model. The API's
published schema (api/wire/chat.py) extends this class, so /openapi.json describes exactly what
is checked here. Messages are read for their role and content only (the token count).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from farebox.records import record
from farebox.validation import validate

MAX_N = 8
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
Count = Annotated[StrictInt, Field(ge=1)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})

    role: Role
    content: str | list[Any] | None = Field(None, description="Text, or content parts.")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})

    include_usage: Any = None


class ChatFields(BaseModel):
    """What farebox reads from a chat request (the rest is passed through)."""

    # Reading ignores other fields (they are not copied); the schema says they are allowed.
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})

    model: Any = Field(None, description="A model id from GET /v1/models.")
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Count | None = None
    max_completion_tokens: Count | None = None
    n: Annotated[StrictInt, Field(ge=1, le=MAX_N)] | None = None


@record
class BilledFields:
    """What billing reads from a chat body, once it is known to be valid."""

    stream: bool | None
    n: int | None
    max_tokens: int | None
    max_completion_tokens: int | None


_ROLES = frozenset(get_args(Role))


def _plainly_valid(body: dict[str, Any]) -> bool:
    """True for the bodies nearly every request sends, when ChatFields would surely accept them
    (a subset of what it accepts: parsed JSON, the usual types); checked in ~0.5 µs where the
    model takes ~2. False sends the body through the model, which accepts it or names the
    field at fault; tests/api/test_chat_fields.py checks the subset on generated bodies."""
    messages = body.get("messages")
    if type(messages) is not list or not messages:
        return False
    for message in messages:
        if type(message) is not dict:
            return False
        role = message.get("role")
        if type(role) is not str or role not in _ROLES:
            return False
        content = message.get("content")
        if content is not None and type(content) is not str and type(content) is not list:
            return False
    stream = body.get("stream")
    if stream is not None and type(stream) is not bool:
        return False
    options = body.get("stream_options")
    if options is not None and type(options) is not dict:
        return False
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (type(value) is not int or value < 1):
            return False
    n = body.get("n")
    return n is None or (type(n) is int and 1 <= n <= MAX_N)


def read_fields(body: dict[str, Any]) -> BilledFields:
    """`body`'s billed fields, or a 400 naming the first field at fault."""
    if _plainly_valid(body):
        get = body.get
        return BilledFields(
            get("stream"), get("n"), get("max_tokens"), get("max_completion_tokens")
        )
    fields = validate(ChatFields, body)
    return BilledFields(fields.stream, fields.n, fields.max_tokens, fields.max_completion_tokens)
