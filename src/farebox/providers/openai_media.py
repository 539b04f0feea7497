"""OpenAI's media endpoints: embeddings, audio (transcriptions, speech) and images."""

from __future__ import annotations

from typing import Any

from farebox.catalog.model import ProviderConfig
from farebox.providers.media_http import MediaUpstream, json_body
from farebox.providers.openai_compat import OpenAICompatible


class OpenAIMediaProvider(OpenAICompatible):
    """An OpenAI-compatible upstream that also serves embeddings, audio and images."""

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._media = MediaUpstream(config)
        self._auth = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {**self._auth, "Content-Type": "application/json"}
        return await self._media.json("POST", "/embeddings", data=json_body(body), headers=headers)

    async def close(self) -> None:
        await super().close()
        await self._media.close()
