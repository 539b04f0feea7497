"""Chat (OpenAI) and messages (Anthropic): the fields we read. Everything else passes through
to the upstream unchanged (`extra="allow"`), so a new upstream parameter needs no release."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from farebox.anthropic.fields import CountTokensFields, MessagesFields
from farebox.chat.fields import ChatFields


class ChatCompletionRequest(ChatFields):
    """POST /v1/chat/completions: the fields farebox reads (validated, chat/fields.py) and a
    few it passes on; any other field passes through to the upstream unchanged. Without
    max_tokens, the operator's default is held and sent."""

    model: Annotated[str, Field(min_length=1, description="A model id from GET /v1/models.")]
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    plugins: list[dict[str, Any]] | None = Field(None, description="[{'id': 'web'}]: web search.")


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(MessagesFields):
    """POST /v1/messages (Anthropic's shape): the fields farebox reads (validated,
    anthropic/fields.py); any other field passes through to the upstream unchanged."""

    messages: Annotated[list[AnthropicMessage], Field(min_length=1)]


class CountTokensRequest(CountTokensFields):
    """POST /v1/messages/count_tokens (free)."""

    messages: Annotated[list[AnthropicMessage], Field(min_length=1)]


class AnthropicAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[dict[str, Any]]
    model: str
    usage: dict[str, Any]
