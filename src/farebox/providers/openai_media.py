"""OpenAI's media endpoints: embeddings, audio (transcriptions, speech) and images."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import aiohttp

from farebox.catalog.model import ProviderConfig
from farebox.images.request import ImageJob, output_content_type
from farebox.media.store import MediaFile
from farebox.providers.base import UpstreamFailure
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

    async def generate_images(self, upstream_model: str, job: ImageJob) -> list[MediaFile]:
        """/images/generations, or /images/edits (multipart) when there is an input image."""
        fields: dict[str, Any] = {"model": upstream_model, "n": job.n}
        if job.prompt is not None:
            fields["prompt"] = job.prompt
        for name in ("size", "quality", "output_format"):
            if name in job.params:
                fields[name] = job.params[name]
        if job.image is None:
            reply = await self._media.json(
                "POST",
                "/images/generations",
                data=json_body(fields),
                headers={**self._auth, "Content-Type": "application/json"},
            )
        else:
            form = aiohttp.FormData()
            for name, value in fields.items():
                form.add_field(name, str(value))
            form.add_field(
                "image", job.image.data, filename="image", content_type=job.image.content_type
            )
            if job.mask is not None:
                form.add_field(
                    "mask", job.mask.data, filename="mask", content_type=job.mask.content_type
                )
            reply = await self._media.json("POST", "/images/edits", data=form, headers=self._auth)
        return await self._images(reply, output_content_type(job))

    async def _images(self, reply: dict[str, Any], content_type: str) -> list[MediaFile]:
        files = []
        for item in reply.get("data") or ():
            if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
                try:
                    files.append(MediaFile(base64.b64decode(item["b64_json"]), content_type))
                except (binascii.Error, ValueError) as exc:
                    raise UpstreamFailure("bad base64 image", provider=self.config.name) from exc
            elif isinstance(item, dict) and isinstance(item.get("url"), str):
                data, sent_type = await self._media.download(item["url"])
                files.append(MediaFile(data, sent_type or content_type))
        return files

    async def close(self) -> None:
        await super().close()
        await self._media.close()
