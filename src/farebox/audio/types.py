"""What audio adapters take and give back."""

from __future__ import annotations

from dataclasses import dataclass

from farebox.providers.base import UpstreamReply

SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
SPEECH_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@dataclass(frozen=True, slots=True)
class AudioInput:
    """An uploaded audio file, already decoded once to measure it."""

    data: bytes
    filename: str
    content_type: str
    seconds: float
    language: str | None = None
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechJob:
    text: str
    voice: str | None
    response_format: str
    speed: float | None = None


@dataclass(slots=True)
class SpeechReply:
    """Audio streaming back (first chunk already read), and the characters the upstream billed."""

    reply: UpstreamReply
    characters: int | None = None
