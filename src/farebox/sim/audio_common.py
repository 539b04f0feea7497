"""What the simulator's speech endpoints share: measuring uploads, made-up transcripts, and
streaming generated audio back."""

from __future__ import annotations

import asyncio
import hashlib
import io

import av
from aiohttp import web

from farebox.sim import media_gen

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "bright",
    "stars",
    "shine",
    "on",
    "calm",
    "water",
    "and",
    "every",
    "small",
    "bird",
    "sings",
    "its",
    "song",
    "to",
    "the",
    "morning",
    "light",
]
WORDS_PER_SECOND = 2.5
SECONDS_PER_CHAR = 0.05
CHUNK = 4096


def measure(data: bytes) -> float | None:
    """Seconds of audio in `data` (decoded), or None if it is not audio."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                return None
            samples, rate = 0, 0
            for frame in container.decode(audio=0):
                samples += frame.samples
                rate = frame.sample_rate or rate
    except av.FFmpegError:
        return None
    return samples / rate if rate else None


def words_for(data: bytes, seconds: float) -> list[tuple[str, float, float]]:
    """Deterministic words with timings spread over the audio."""
    count = max(1, int(seconds * WORDS_PER_SECOND))
    offset = hashlib.sha256(data[:4096]).digest()[0]
    step = seconds / count
    return [
        (WORDS[(offset + i) % len(WORDS)], round(i * step, 3), round((i + 1) * step, 3))
        for i in range(count)
    ]


def speech_seconds(text: str) -> float:
    return max(0.3, len(text) * SECONDS_PER_CHAR)


def synthesize(text: str, fmt: str) -> bytes:
    """Audio for `text` in "mp3", "wav", "pcm" (raw 16-bit), "opus", "aac" or "flac"."""
    seconds = speech_seconds(text)
    if fmt == "pcm":
        return media_gen.wav(seconds, text)[44:]
    return media_gen.encoded_audio(seconds, fmt, text)


async def stream_audio(
    request: web.Request, data: bytes, content_type: str, headers: dict[str, str]
) -> web.StreamResponse:
    """Send `data` in chunks, as a streaming TTS upstream does."""
    response = web.StreamResponse(headers={"Content-Type": content_type, **headers})
    await response.prepare(request)
    for start in range(0, len(data), CHUNK):
        await response.write(data[start : start + CHUNK])
        await asyncio.sleep(0)
    await response.write_eof()
    return response
