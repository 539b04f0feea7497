"""Text to speech with espeak-ng (from Debian), re-encoded by FFmpeg to the asked format."""

from __future__ import annotations

import io
import subprocess

from farebox import optional
from farebox.local.availability import TTS_COMMAND

CODECS = {
    "mp3": ("libmp3lame", "mp3"),
    "opus": ("libopus", "ogg"),
    "aac": ("aac", "adts"),
    "flac": ("flac", "flac"),
}


def espeak_wav(text: str, voice: str) -> bytes:
    done = subprocess.run(
        [TTS_COMMAND, "-v", voice, "-s", "150", "--stdout"],
        input=text.encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def convert(wav: bytes, fmt: str) -> bytes:
    """espeak's WAV as `fmt` (wav as it is; pcm is the raw samples)."""
    if fmt == "wav":
        return wav
    if fmt == "pcm":
        return wav[44:]
    codec, container = CODECS[fmt]
    av = optional.av()
    out = io.BytesIO()
    with av.open(io.BytesIO(wav), mode="r") as source, av.open(out, "w", format=container) as sink:
        rate = 48_000 if codec == "libopus" else source.streams.audio[0].rate
        stream = sink.add_stream(codec, rate=rate)
        stream.layout = "mono"
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)
    return out.getvalue()


def synthesize(text: str, voice: str, fmt: str) -> bytes:
    return convert(espeak_wav(text, voice), fmt)
