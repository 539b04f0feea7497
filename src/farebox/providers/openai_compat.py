"""OpenAI-compatible upstreams: OpenAI, OpenRouter, Together, Groq, DeepSeek, vLLM, Ollama, ..."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from farebox.catalog.model import ProviderConfig
from farebox.providers.http import H1Reply, HttpUpstream, json_headers


class OpenAICompatible:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._http = HttpUpstream(config)
        auth = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._headers = json_headers(auth)

    async def chat(
        self, upstream_model: str, body: dict[str, Any], stream: bool, headers: Mapping[str, str]
    ) -> H1Reply:
        payload = dict(body)
        payload["model"] = upstream_model
        # The token cap (the chat pipeline always sets one) in the field this upstream honours.
        completion_cap = payload.pop("max_completion_tokens", None)
        plain_cap = payload.pop("max_tokens", None)
        cap = completion_cap if completion_cap is not None else plain_cap
        if cap is not None:
            payload[self.config.max_tokens_field] = cap
        if stream:
            options = dict(payload.get("stream_options") or {})
            options["include_usage"] = True
            payload["stream_options"] = options
        reply = await self._http.post(
            "/chat/completions", orjson.dumps(payload), {**self._headers, **headers}
        )
        if stream:
            await reply.prime()
        return reply

    async def close(self) -> None:
        await self._http.close()
