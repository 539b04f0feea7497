"""OpenAI's media endpoints: embeddings, audio (transcriptions, speech) and images."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import aiohttp

from farebox.audio.transcripts import Segment, Transcript, Word
from farebox.audio.types import AudioInput, SpeechJob, SpeechReply
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

    async def transcribe(self, upstream_model: str, audio: AudioInput) -> Transcript:
        """/audio/transcriptions, always as verbose_json (it carries the duration to bill)."""
        form = aiohttp.FormData()
        form.add_field("model", upstream_model)
        form.add_field("response_format", "verbose_json")
        if audio.language and audio.language != "multi":
            form.add_field("language", audio.language)
        if audio.prompt:
            form.add_field("prompt", audio.prompt)
        form.add_field("file", audio.data, filename=audio.filename, content_type=audio.content_type)
        reply = await self._media.json(
            "POST", "/audio/transcriptions", data=form, headers=self._auth
        )
        text = reply.get("text")
        if not isinstance(text, str):
            raise UpstreamFailure("unreadable transcript", provider=self.config.name)
        duration = reply.get("duration")
        return Transcript(
            text=text,
            duration_s=float(duration) if isinstance(duration, int | float) else None,
            language=reply.get("language"),
            segments=tuple(
                Segment(float(s["start"]), float(s["end"]), str(s.get("text", "")))
                for s in reply.get("segments") or ()
                if isinstance(s, dict) and "start" in s and "end" in s
            ),
            words=tuple(
                Word(str(w.get("word", "")), float(w["start"]), float(w["end"]))
                for w in reply.get("words") or ()
                if isinstance(w, dict) and "start" in w and "end" in w
            ),
        )

    async def speak(self, upstream_model: str, job: SpeechJob) -> SpeechReply:
        body: dict[str, Any] = {
            "model": upstream_model,
            "input": job.text,
            "voice": job.voice or "alloy",
            "response_format": job.response_format,
        }
        if job.speed is not None:
            body["speed"] = job.speed
        reply = await self._media.send(
            "POST",
            "/audio/speech",
            data=json_body(body),
            headers={**self._auth, "Content-Type": "application/json"},
        )
        await reply.prime()
        return SpeechReply(reply)

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
