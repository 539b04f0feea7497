"""Speech to text with pocketsphinx (its US English model ships in the wheel). The upload is
decoded and resampled to 16 kHz mono with FFmpeg first, so every accepted format works."""

from __future__ import annotations

import importlib
import io
from typing import Any

from farebox import optional
from farebox.audio.transcripts import Segment, Transcript
from farebox.local.availability import STT_PACKAGE

RATE = 16_000
FRAMES_PER_SECOND = 100  # pocketsphinx segment times are in 10 ms frames


def pcm16k(data: bytes) -> bytes:
    """Mono 16-bit 16 kHz PCM of the first audio stream."""
    av = optional.av()
    out = bytearray()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(io.BytesIO(data), mode="r") as box:
        for frame in box.decode(audio=0):
            for converted in resampler.resample(frame):
                out += bytes(converted.planes[0])[: converted.samples * 2]
    for converted in resampler.resample(None):
        out += bytes(converted.planes[0])[: converted.samples * 2]
    return bytes(out)


class LocalTranscriber:
    def __init__(self) -> None:
        self._module: Any = None

    def transcribe(self, data: bytes, language: str | None) -> Transcript:
        if self._module is None:
            self._module = importlib.import_module(STT_PACKAGE)
        pcm = pcm16k(data)
        decoder = self._module.Decoder(samprate=RATE, loglevel="FATAL")
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        segments = tuple(
            Segment(
                seg.start_frame / FRAMES_PER_SECOND, seg.end_frame / FRAMES_PER_SECOND, seg.word
            )
            for seg in decoder.seg()
            if not seg.word.startswith(("<", "[")) and seg.word != "</s>"
        )
        return Transcript(
            text=text,
            duration_s=len(pcm) / 2 / RATE,
            language=language if language and language != "multi" else "en",
            segments=segments,
        )
