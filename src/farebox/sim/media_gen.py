"""Real media for the simulator to send: images (PNG, JPEG, WebP), speech-like audio (WAV,
MP3) and video (MP4/H.264), all small, all decodable by ordinary tools."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from fractions import Fraction
from typing import Any

import av
from PIL import Image

IMAGE_FORMATS = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
MAX_SIDE = 256
SAMPLE_RATE = 16_000


def _seed(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def image_size(size: str | None) -> tuple[int, int]:
    """Pixel size for "1024x1536" or an aspect ratio "16:9", scaled down to at most 256 px."""
    width, height = 1024, 1024
    if size and "x" in size:
        w, _, h = size.partition("x")
        if w.isdigit() and h.isdigit():
            width, height = int(w), int(h)
    elif size and ":" in size:
        w, _, h = size.partition(":")
        if w.isdigit() and h.isdigit() and int(w) and int(h):
            width, height = 1024 * int(w), 1024 * int(h)
    scale = MAX_SIDE / max(width, height)
    return max(8, round(width * scale)), max(8, round(height * scale))


def image(prompt: str, size: str | None = None, fmt: str = "png", index: int = 0) -> bytes:
    """A gradient picture whose colours come from the prompt."""
    seed = _seed(f"{prompt}/{index}")
    width, height = image_size(size)
    picture = Image.new("RGB", (width, height))
    r0, g0, b0 = seed[0], seed[1], seed[2]
    picture.putdata(
        [
            ((r0 + x) % 256, (g0 + y) % 256, (b0 + x + y) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    return encode_image(picture, fmt)


def encode_image(picture: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    pil_format = {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG")
    picture.convert("RGB").save(out, format=pil_format)
    return out.getvalue()


def edited(source: bytes, prompt: str, fmt: str = "png") -> bytes:
    """The source image with its colours inverted and the prompt's tint: a visible edit."""
    picture = Image.open(io.BytesIO(source)).convert("RGB")
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    seed = _seed(prompt)
    inverted = Image.eval(picture, lambda v: 255 - v)
    tint = Image.new("RGB", inverted.size, (seed[0], seed[1], seed[2]))
    return encode_image(Image.blend(inverted, tint, 0.25), fmt)


def tone(seconds: float, seed: str = "") -> list[int]:
    """16-bit mono samples: a voice-like warble whose pitch depends on `seed`."""
    base = 140 + _seed(seed)[0] % 80
    count = max(1, int(seconds * SAMPLE_RATE))
    return [
        int(
            9000
            * math.sin(2 * math.pi * base * (t / SAMPLE_RATE))
            * (0.6 + 0.4 * math.sin(2 * math.pi * 3 * t / SAMPLE_RATE))
        )
        for t in range(count)
    ]


def wav(seconds: float, seed: str = "") -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(struct.pack(f"<{int(seconds * SAMPLE_RATE) or 1}h", *tone(seconds, seed)))
    return out.getvalue()


def encoded_audio(seconds: float, fmt: str, seed: str = "") -> bytes:
    """Audio in "mp3", "opus" (Ogg), "aac" (ADTS), "flac" or "wav"."""
    if fmt in ("wav", "pcm"):
        return wav(seconds, seed)
    codec, container = {
        "mp3": ("libmp3lame", "mp3"),
        "opus": ("libopus", "ogg"),
        "aac": ("aac", "adts"),
        "flac": ("flac", "flac"),
    }[fmt]
    rate = 48_000 if codec == "libopus" else SAMPLE_RATE
    samples = tone(seconds, seed)
    if rate != SAMPLE_RATE:
        samples = [
            samples[int(i * SAMPLE_RATE / rate)] for i in range(len(samples) * rate // SAMPLE_RATE)
        ]
    out = io.BytesIO()
    with av.open(out, "w", format=container) as box:
        stream: Any = box.add_stream(codec, rate=rate)
        stream.layout = "mono"
        context: Any = stream.codec_context
        context.format = (
            "fltp" if codec in ("libopus", "aac") else "s16p" if codec == "libmp3lame" else "s16"
        )
        size = context.frame_size or 1024
        pts = 0
        for start in range(0, len(samples), size):
            chunk = samples[start : start + size]
            chunk += [0] * (size - len(chunk)) if context.frame_size else []
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk))
            frame.planes[0].update(struct.pack(f"<{len(chunk)}h", *chunk))
            frame.sample_rate = rate
            frame.pts = pts
            pts += len(chunk)
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


def mp4(
    seconds: float, prompt: str = "", width: int = 160, height: int = 90, fps: int = 8
) -> bytes:
    """A short H.264 MP4 of a moving gradient."""
    seed = _seed(prompt)
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as box:
        stream: Any = box.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(max(1, round(seconds * fps))):
            picture = Image.new("RGB", (width, height), ((seed[0] + 8 * i) % 256, seed[1], seed[2]))
            frame: Any = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            frame.pts = i
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()
