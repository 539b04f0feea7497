"""The `local` provider kind: routes a catalog model to an in-process engine by its upstream
model name ("all-minilm-l6-v2", "pocketsphinx-en", "espeak-ng")."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from farebox import optional
from farebox.audio.transcripts import Transcript
from farebox.audio.types import SPEECH_CONTENT_TYPES, AudioInput, SpeechJob, SpeechReply
from farebox.catalog.model import ProviderConfig
from farebox.local.embeddings import LocalEmbedder
from farebox.local.replies import BytesReply
from farebox.local.speak import synthesize
from farebox.local.transcribe import LocalTranscriber
from farebox.providers.base import UpstreamFailure

EMBEDDING_MODEL = "all-minilm-l6-v2"
STT_MODEL = "pocketsphinx-en"
TTS_MODEL = "espeak-ng"


class LocalProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._embedder = LocalEmbedder()
        self._transcriber = LocalTranscriber()
        self._busy = asyncio.Semaphore(1)  # one CPU-heavy job at a time

    def _check(self, upstream_model: str, expected: str) -> None:
        if upstream_model != expected:
            raise UpstreamFailure(
                f"local provider has no model {upstream_model!r}",
                provider=self.config.name,
                retryable=False,
            )

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check(str(body.get("model")), EMBEDDING_MODEL)
        inputs = body["input"]
        texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inputs]
        as_base64 = body.get("encoding_format") == "base64"
        async with self._busy:
            vectors, tokens = await asyncio.to_thread(self._embedder.embed, texts, as_base64)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "model": EMBEDDING_MODEL,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def transcribe(self, upstream_model: str, audio: AudioInput) -> Transcript:
        self._check(upstream_model, STT_MODEL)
        async with self._busy:
            try:
                return await asyncio.to_thread(
                    self._transcriber.transcribe, audio.data, audio.language
                )
            except optional.av().FFmpegError as exc:
                raise UpstreamFailure(
                    "local transcription could not decode the audio",
                    provider=self.config.name,
                    retryable=False,
                ) from exc

    async def speak(self, upstream_model: str, job: SpeechJob) -> SpeechReply:
        self._check(upstream_model, TTS_MODEL)
        voice = job.voice or "en-us"
        async with self._busy:
            try:
                audio = await asyncio.to_thread(synthesize, job.text, voice, job.response_format)
            except (subprocess.SubprocessError, OSError) as exc:
                raise UpstreamFailure(
                    "espeak-ng failed",
                    provider=self.config.name,
                    retryable=False,
                    detail=str(exc),
                ) from exc
        reply = BytesReply(audio, SPEECH_CONTENT_TYPES[job.response_format])
        return SpeechReply(reply, len(job.text))

    async def close(self) -> None:
        return None
