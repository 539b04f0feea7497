"""A transcript as adapters return it, and the response formats clients ask for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    text: str
    duration_s: float | None
    """Seconds of audio the upstream says it processed (what the request settles on)."""
    language: str | None = None
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = field(default_factory=tuple)


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _segments(t: Transcript, duration: float) -> tuple[Segment, ...]:
    if t.segments:
        return t.segments
    return (Segment(0.0, duration, t.text),) if t.text else ()


def render(t: Transcript, fmt: str, duration: float, cost_usd: float) -> tuple[bytes, str]:
    """(body, media type) of the transcript in `fmt`; JSON shapes carry `cost`."""
    segments = _segments(t, duration)
    if fmt == "text":
        return (t.text + "\n").encode(), "text/plain; charset=utf-8"
    if fmt == "srt":
        blocks = [
            f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
            for i, s in enumerate(segments, 1)
        ]
        return "\n".join(blocks).encode(), "text/plain; charset=utf-8"
    if fmt == "vtt":
        cues = [
            f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n" for s in segments
        ]
        return ("WEBVTT\n\n" + "\n".join(cues)).encode(), "text/vtt; charset=utf-8"
    usage = {"type": "duration", "seconds": round(duration, 3), "cost": cost_usd}
    if fmt == "json":
        body: dict[str, Any] = {"text": t.text, "usage": usage, "cost": cost_usd}
        return orjson.dumps(body), "application/json"
    body = {
        "task": "transcribe",
        "language": t.language or "english",
        "duration": round(duration, 3),
        "text": t.text,
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
            for i, s in enumerate(segments)
        ],
        "usage": usage,
        "cost": cost_usd,
    }
    if t.words:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in t.words]
    return orjson.dumps(body), "application/json"
