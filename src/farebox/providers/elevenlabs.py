"""ElevenLabs speech: `POST /v1/text-to-speech/{voice_id}/stream?output_format=...` with
`{"text", "model_id"}` and the `xi-api-key` header; audio streams back, and
`x-character-count` says how many characters were billed."""

from __future__ import annotations

from farebox.audio.types import SpeechJob, SpeechReply
from farebox.catalog.model import ProviderConfig
from farebox.providers.base import UpstreamFailure
from farebox.providers.deepgram import char_count
from farebox.providers.media_http import MediaUpstream, json_body

OUTPUT_FORMATS = {
    "mp3": "mp3_44100_128",
    "pcm": "pcm_24000",
    "opus": "opus_48000_64",
    "wav": "wav_44100",
}


class ElevenLabsProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._http = MediaUpstream(config)
        self._auth = {"xi-api-key": config.api_key} if config.api_key else {}

    async def speak(self, upstream_model: str, job: SpeechJob) -> SpeechReply:
        if not job.voice:
            raise UpstreamFailure(
                f"{self.config.name} needs a voice id; list the model's voices in the catalog",
                provider=self.config.name,
                retryable=False,
            )
        body: dict[str, object] = {"text": job.text, "model_id": upstream_model}
        if job.speed is not None:
            body["voice_settings"] = {"speed": job.speed}
        reply = await self._http.send(
            "POST",
            f"/text-to-speech/{job.voice}/stream",
            data=json_body(body),
            params={"output_format": OUTPUT_FORMATS.get(job.response_format, "mp3_44100_128")},
            headers={**self._auth, "Content-Type": "application/json"},
        )
        await reply.prime()
        return SpeechReply(reply, char_count(reply.headers, "x-character-count"))

    async def close(self) -> None:
        await self._http.close()
