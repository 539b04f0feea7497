"""Deepgram: pre-recorded transcription (`POST /v1/listen`) and Aura speech (`POST /v1/speak`).

Auth `Authorization: Token <key>`. Listen takes the raw audio as the body and answers
`{metadata: {duration}, results: {channels: [{alternatives: [{transcript, words}]}],
utterances}}`; speak takes `{"text"}` with the voice as `model` and streams audio back,
reporting the characters it billed in `dg-char-count`.
"""

from __future__ import annotations

from typing import Any

from farebox.audio.transcripts import Segment, Transcript, Word
from farebox.audio.types import AudioInput, SpeechJob, SpeechReply
from farebox.catalog.model import ProviderConfig
from farebox.inputs import ascii_whole_number
from farebox.providers.base import UpstreamFailure
from farebox.providers.media_http import MediaUpstream, json_body

SPEAK_ENCODINGS: dict[str, dict[str, str]] = {
    "mp3": {"encoding": "mp3"},
    "wav": {"encoding": "linear16", "container": "wav"},
    "pcm": {"encoding": "linear16", "container": "none"},
    "opus": {"encoding": "opus", "container": "ogg"},
    "aac": {"encoding": "aac"},
    "flac": {"encoding": "flac"},
}


def parse_listen(reply: dict[str, Any], provider: str) -> Transcript:
    try:
        channel = reply["results"]["channels"][0]
        best = channel["alternatives"][0]
        text = str(best.get("transcript", ""))
    except (KeyError, IndexError, TypeError) as exc:
        raise UpstreamFailure(
            f"{provider} sent an unreadable transcript", provider=provider
        ) from exc
    duration = (reply.get("metadata") or {}).get("duration")
    words = tuple(
        Word(str(w.get("punctuated_word") or w.get("word", "")), float(w["start"]), float(w["end"]))
        for w in best.get("words") or ()
        if isinstance(w, dict) and "start" in w and "end" in w
    )
    utterances = (reply.get("results") or {}).get("utterances") or ()
    segments = tuple(
        Segment(float(u["start"]), float(u["end"]), str(u.get("transcript", "")))
        for u in utterances
        if isinstance(u, dict) and "start" in u and "end" in u
    )
    return Transcript(
        text=text,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        language=channel.get("detected_language"),
        segments=segments,
        words=words,
    )


def char_count(headers: Any, *names: str) -> int | None:
    for name in names:
        value = headers.get(name) if headers is not None else None
        count = ascii_whole_number(value, 12) if isinstance(value, str) else None
        if count is not None:  # isdigit() would accept "²", which int() refuses
            return count
    return None


MAX_PROMPT_TERMS = 50


def prompt_params(upstream_model: str, prompt: str | None) -> list[tuple[str, str]]:
    """OpenAI's `prompt`, as Deepgram takes guidance: Nova-3 a keyterm (the prompt's words, as
    one phrase), older models keywords (each distinct word once, at most 50)."""
    words = (prompt or "").split()
    if not words:
        return []
    if upstream_model.startswith("nova-3"):
        return [("keyterm", " ".join(words[:MAX_PROMPT_TERMS]))]
    distinct = list(dict.fromkeys(words))[:MAX_PROMPT_TERMS]
    return [("keywords", word) for word in distinct]


class DeepgramProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._http = MediaUpstream(config)
        self._auth = {"Authorization": f"Token {config.api_key}"} if config.api_key else {}

    async def transcribe(self, upstream_model: str, audio: AudioInput) -> Transcript:
        params: list[tuple[str, str]] = [
            ("model", upstream_model),
            ("smart_format", "true"),
            ("utterances", "true"),
        ]
        if audio.language:
            params.append(("language", audio.language))
        else:
            params.append(("detect_language", "true"))
        params += prompt_params(upstream_model, audio.prompt)
        reply = await self._http.json(
            "POST",
            "/listen",
            data=audio.data,
            params=params,
            headers={**self._auth, "Content-Type": audio.content_type},
        )
        return parse_listen(reply, self.config.name)

    async def speak(self, upstream_model: str, job: SpeechJob) -> SpeechReply:
        params = {"model": job.voice or upstream_model, **SPEAK_ENCODINGS[job.response_format]}
        if job.speed is not None:
            params["speed"] = str(job.speed)
        reply = await self._http.send(
            "POST",
            "/speak",
            data=json_body({"text": job.text}),
            params=params,
            headers={**self._auth, "Content-Type": "application/json"},
        )
        await reply.prime()
        return SpeechReply(reply, char_count(reply.headers, "dg-char-count"))

    async def close(self) -> None:
        await self._http.close()
