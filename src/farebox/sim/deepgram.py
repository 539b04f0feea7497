"""Deepgram: `POST /v1/listen` (raw audio in, `metadata.duration` and a transcript out) and
`POST /v1/speak` (Aura: `{"text"}` in, audio streamed out with `dg-char-count`). Auth `Token`."""

from __future__ import annotations

import uuid

from aiohttp import web

from farebox.sim.audio_common import measure, stream_audio, synthesize, words_for
from farebox.sim.media_base import enter
from farebox.sim.openai_base import error_response, json_response, read_json_object

ENCODINGS = {
    ("mp3", ""): ("mp3", "audio/mpeg"),
    ("linear16", "wav"): ("wav", "audio/wav"),
    ("linear16", "none"): ("pcm", "audio/l16"),
    ("opus", "ogg"): ("opus", "audio/ogg"),
    ("aac", ""): ("aac", "audio/aac"),
    ("flac", ""): ("flac", "audio/flac"),
}


async def listen(request: web.Request) -> web.StreamResponse:
    entered = await enter(request, "deepgram.listen", scheme="Token")
    if isinstance(entered, web.Response):
        return entered
    data = await request.read()
    seconds = measure(data)
    if seconds is None:
        return error_response(
            400, "Bad Request: failed to process audio: corrupt or unsupported data"
        )
    if entered[1].report_ms is not None:
        seconds = entered[1].report_ms / 1000
    words = words_for(data, seconds)
    # Keyterm prompting (Nova-3) and keywords (older models) make the simulated recognizer hear
    # those terms first, so a test can see that a prompt reached Deepgram.
    heard = request.query.getall("keyterm", []) + [
        term.split(":")[0] for term in request.query.getall("keywords", [])
    ]
    if heard:
        step = seconds / (len(words) + len(heard) + 1)
        prompted = [(term, i * step, (i + 1) * step) for i, term in enumerate(heard)]
        words = prompted + words[: max(0, len(words) - len(heard))]
    text = " ".join(w for w, _, _ in words)
    language = request.query.get("language") or "en"
    channel: dict[str, object] = {
        "alternatives": [
            {
                "transcript": text,
                "confidence": 0.99,
                "words": [
                    {"word": w, "start": s, "end": e, "confidence": 0.99, "punctuated_word": w}
                    for w, s, e in words
                ],
            }
        ]
    }
    if "language" not in request.query:
        channel["detected_language"] = language
    return json_response(
        {
            "metadata": {
                "request_id": str(uuid.uuid4()),
                "duration": seconds,
                "channels": 1,
                "models": [request.query.get("model", "base")],
            },
            "results": {
                "channels": [channel],
                "utterances": [
                    {"start": 0.0, "end": seconds, "transcript": text, "channel": 0, "id": "0"}
                ],
            },
        }
    )


async def speak(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, "deepgram.speak", scheme="Token", body=body)
    if isinstance(entered, web.Response):
        return entered
    text = body.get("text")
    if not isinstance(text, str) or not text:
        return error_response(400, "text is required")
    if len(text) > 2000:
        return error_response(413, "Text exceeds the 2000 character limit")
    key = (request.query.get("encoding", "mp3"), request.query.get("container", ""))
    if key not in ENCODINGS:
        key = (key[0], "")
    fmt, content_type = ENCODINGS.get(key, ENCODINGS[("mp3", "")])
    headers = {"dg-char-count": str(len(text)), "dg-model-name": request.query.get("model", "")}
    return await stream_audio(request, synthesize(text, fmt), content_type, headers)


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/v1/listen", listen),
    web.post("/v1/speak", speak),
)
