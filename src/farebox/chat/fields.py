"""The fields of an OpenAI chat body that billing reads, as a pydantic model.

Only these are validated (and only for reading): the body itself is sent upstream as the
customer wrote it, unknown fields included, never re-serialised from this model. The API's
published schema (api/wire/chat.py) extends this class, so /openapi.json describes exactly what
is checked here. Messages are read for their role and content only (the token count).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

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


def read_fields(body: dict[str, Any]) -> ChatFields:
    """`body`'s billed fields, or a 400 naming the first field at fault."""
    return validate(ChatFields, body)
