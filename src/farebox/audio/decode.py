"""Audio duration from a real decoder (FFmpeg through PyAV): every frame is decoded and its
samples counted, so a file whose header lies, or that is not audio at all, is caught before
any money is held."""

from __future__ import annotations

import asyncio
from typing import IO

from farebox import optional
from farebox.errors import InvalidRequest

EXTENSIONS = frozenset({"mp3", "mp4", "mpeg", "mpga", "m4a", "wav", "webm", "ogg", "oga", "flac"})
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "mpga": "audio/mpeg",
    "mpeg": "audio/mpeg",
    "mp4": "audio/mp4",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
    "webm": "audio/webm",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "flac": "audio/flac",
}


def undecodable(detail: str = "") -> InvalidRequest:
    extra = f" ({detail})" if detail else ""
    return InvalidRequest(
        f"The file could not be decoded as audio{extra}. Send mp3, mp4, mpeg, mpga, m4a, wav "
        "or webm.",
        param="file",
    )


def check_extension(filename: str | None) -> str | None:
    """The file's extension if it names one we take; InvalidRequest if it names another."""
    if not filename or "." not in filename:
        return None
    ext = filename.rsplit(".", 1)[1].lower()
    if ext not in EXTENSIONS:
        raise InvalidRequest(
            f"Files of type .{ext} are not supported. Send mp3, mp4, mpeg, mpga, m4a, wav or webm.",
            param="file",
        )
    return ext


def decoded_seconds(source: IO[bytes]) -> float:
    """Seconds of audio in the first audio stream, counted from decoded samples."""
    av = optional.av()
    source.seek(0)
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.audio:
                raise undecodable("no audio stream")
            stream = container.streams.audio[0]
            samples = 0
            rate = 0
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
    except av.FFmpegError as exc:
        raise undecodable() from exc
    finally:
        source.seek(0)
    if samples == 0 or rate == 0:
        raise undecodable("no audio samples")
    return samples / rate


async def audio_seconds(source: IO[bytes]) -> float:
    return await asyncio.to_thread(decoded_seconds, source)
