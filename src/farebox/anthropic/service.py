"""`/v1/messages` on any chat model: translate, bill and run through the chat pipeline, reply in
Anthropic's format. The money path is ChatService's (one hold -> meter -> settle for both fronts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from farebox.anthropic.fields import read_count_tokens_fields, read_messages_fields
from farebox.anthropic.front_request import FrontRequest, translate
from farebox.anthropic.front_response import to_message
from farebox.anthropic.front_stream import StreamTranslator, translate_stream
from farebox.anthropic.upstream_request import is_web_search_tool
from farebox.catalog.model import Catalog
from farebox.chat.request import ChatCall, chat_call
from farebox.chat.service import ChatService
from farebox.errors import InvalidRequest
from farebox.inputs import parse_json_object
from farebox.keys.store import ApiKey
from farebox.modalities.paid import Buyer
from farebox.providers.native import NativeRequest
from farebox.search.options import ONLINE_SUFFIX

KIND = "anthropic"
PASSED_HEADERS = ("anthropic-beta",)
"""Client headers an Anthropic upstream is sent (only that kind of upstream)."""
FAREBOX_FIELDS = frozenset({"plugins"})
"""Request fields farebox acts on itself: never sent to an Anthropic upstream."""


@dataclass(slots=True)
class MessagesResult:
    body: bytes | None = None
    cost_nanos: int | None = None
    stream: AsyncIterator[bytes] | None = None
    request_id: str = ""


def _checked_model(body: dict[str, Any]) -> str:
    """The catalog id asked for (without the web plugin's `:online` suffix)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "model: Field required (a model id from GET /v1/models)", param="model"
        )
    return model.removesuffix(ONLINE_SUFFIX)


def _asked_searches(body: dict[str, Any]) -> int | None:
    """The customer's own `web_search` server tool: its `max_uses` (0 if unset), None if none.
    Such a request is billed as the web plugin's native search (search/native.py)."""
    tools = body.get("tools")
    tool = (
        next((t for t in tools if is_web_search_tool(t)), None) if isinstance(tools, list) else None
    )
    if tool is None:
        return None
    uses = tool.get("max_uses")
    return uses if isinstance(uses, int) and not isinstance(uses, bool) and uses > 0 else 0


@dataclass(slots=True)
class MessagesCall:
    """A validated Messages request: its Anthropic front and the chat call it became."""

    front: FrontRequest
    call: ChatCall


class MessagesService:
    def __init__(self, catalog: Catalog, chat: ChatService) -> None:
        self.catalog = catalog
        self.chat = chat

    def prepare(self, raw: bytes, headers: Mapping[str, str], query: str = "") -> MessagesCall:
        """Validate and translate a request (before anything is paid for)."""
        body = parse_json_object(raw)
        read_messages_fields(body)
        model = self.catalog.resolve(_checked_model(body))
        front = translate(body, model.max_output)
        call = chat_call(front.openai, self.catalog)
        if call.model.type != "chat":
            raise InvalidRequest(f"{call.model.id} is not a chat model", param="model")
        passed = {name: headers[name] for name in PASSED_HEADERS if name in headers}
        native = {k: v for k, v in body.items() if k not in FAREBOX_FIELDS}
        call.native = {KIND: NativeRequest(body=native, headers=passed, query=query)}
        call.native_search = _asked_searches(body)
        return MessagesCall(front, call)

    async def create(
        self,
        key: ApiKey,
        raw: bytes,
        headers: Mapping[str, str],
        query: str = "",
        source: str = "api",
    ) -> MessagesResult:
        return await self.run(key, self.prepare(raw, headers, query), source)

    async def run(
        self, who: ApiKey | Buyer, prepared: MessagesCall, source: str = "api"
    ) -> MessagesResult:
        """Bill and run through the chat pipeline (`who`: a key, or a 402-paid Buyer)."""
        front, call = prepared.front, prepared.call
        result = await self.chat.run(who, call, source)
        message_id = "msg_" + result.request_id
        if result.stream is not None:
            translator = StreamTranslator(
                message_id=message_id,
                model=call.model.id,
                input_tokens=call.prompt_tokens,
                stop_sequences=front.stop_sequences,
                omit_thinking=front.omit_thinking,
            )
            return MessagesResult(
                stream=translate_stream(result.stream, translator), request_id=result.request_id
            )
        assert result.body is not None
        message = to_message(
            orjson.loads(result.body),
            message_id=message_id,
            model=call.model.id,
            stop_sequences=front.stop_sequences,
            omit_thinking=front.omit_thinking,
        )
        return MessagesResult(
            body=orjson.dumps(message), cost_nanos=result.cost_nanos, request_id=result.request_id
        )

    def count_tokens(self, raw: bytes) -> dict[str, int]:
        """Input tokens of a Messages request, counted as a request would be held (free)."""
        body = parse_json_object(raw)
        read_count_tokens_fields(body)
        model = self.catalog.resolve(_checked_model(body))
        front = translate({**body, "max_tokens": 1, "stream": False}, model.max_output)
        return {"input_tokens": chat_call(front.openai, self.catalog).prompt_tokens}
