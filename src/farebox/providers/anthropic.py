"""Anthropic's native Messages API (`x-api-key`, `anthropic-version`), read back as OpenAI chat.

Given the customer's original Messages request (the /v1/messages front), it is sent as is with the
money-capped `max_tokens`; otherwise the OpenAI chat body is translated. Either way the reply is
translated to OpenAI chat for the metered pipeline (see anthropic/upstream_response.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from farebox.anthropic.upstream_request import from_native, from_openai
from farebox.anthropic.upstream_response import to_completion, translate_events
from farebox.catalog.model import CatalogModel, ProviderConfig, Route
from farebox.providers.base import UpstreamFailure
from farebox.providers.http import H1Reply, HttpUpstream, json_headers
from farebox.providers.native import NativeRequests

ANTHROPIC_VERSION = "2023-06-01"
KIND = "anthropic"
DEFAULT_MAX_TOKENS = 4096
"""max_tokens when neither the request nor the model's catalog entry says (Anthropic needs one)."""


class TranslatedReply:
    """An Anthropic reply that reads as an OpenAI chat reply."""

    def __init__(self, reply: H1Reply, provider: str) -> None:
        self._reply = reply
        self._provider = provider
        self.status = reply.status
        self.content_type = (
            "text/event-stream" if "event-stream" in reply.content_type else ("application/json")
        )

    async def read(self) -> bytes:
        raw = await self._reply.read()
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamFailure(
                f"{self._provider} sent a reply that is not JSON", provider=self._provider
            ) from exc
        if not isinstance(message, dict) or message.get("type") == "error":
            raise UpstreamFailure(
                f"{self._provider} sent an error instead of a message", provider=self._provider
            )
        return orjson.dumps(to_completion(message))

    def chunks(self) -> AsyncIterator[bytes]:
        return translate_events(self._reply.chunks())

    async def prime(self) -> None:
        await self._reply.prime()

    def close(self) -> None:
        self._reply.close()


class AnthropicMessages:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._http = HttpUpstream(config)
        auth = {"x-api-key": config.api_key} if config.api_key else {}
        self._headers = json_headers({**auth, "anthropic-version": ANTHROPIC_VERSION})

    async def chat(
        self, upstream_model: str, body: dict[str, Any], stream: bool, headers: Mapping[str, str]
    ) -> TranslatedReply:
        payload = from_openai(body, upstream_model, stream, DEFAULT_MAX_TOKENS)
        return await self._send(payload, stream, headers, "")

    async def chat_for(
        self,
        model: CatalogModel,
        route: Route,
        body: dict[str, Any],
        stream: bool,
        headers: Mapping[str, str],
        native: NativeRequests | None,
    ) -> TranslatedReply:
        original = native.get(KIND) if native else None
        if original is not None:
            payload = from_native(dict(original.body), body, route.upstream_model, stream)
            extra = {**headers, **original.headers}
            return await self._send(payload, stream, extra, original.query)
        payload = from_openai(body, route.upstream_model, stream, model.max_output)
        return await self._send(payload, stream, headers, "")

    async def _send(
        self, payload: dict[str, Any], stream: bool, headers: Mapping[str, str], query: str
    ) -> TranslatedReply:
        path = "/messages" + (f"?{query}" if query else "")
        reply = await self._http.post(path, orjson.dumps(payload), {**self._headers, **headers})
        translated = TranslatedReply(reply, self.config.name)
        if stream:
            await translated.prime()
        return translated

    async def close(self) -> None:
        await self._http.close()
