"""OpenAI audio: `POST /v1/audio/transcriptions` (multipart; json, text, verbose_json with the
decoded duration) and `POST /v1/audio/speech` (audio streamed back in the asked format)."""

from __future__ import annotations

from aiohttp import web

from farebox.sim.audio_common import measure, stream_audio, synthesize, words_for
from farebox.sim.media_base import enter
from farebox.sim.openai_base import error_response, json_response, read_json_object

ENDPOINT = "audio"
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


async def transcriptions(request: web.Request) -> web.StreamResponse:
    entered = await enter(request, ENDPOINT + ".transcriptions")
    if isinstance(entered, web.Response):
        return entered
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return error_response(400, "file is required", param="file")
    data = upload.file.read()
    seconds = measure(data)
    if seconds is None:
        return error_response(400, "Audio file might be corrupted or unsupported", param="file")
    if entered[1].report_ms is not None:
        seconds = entered[1].report_ms / 1000
    words = words_for(data, seconds)
    text = " ".join(w for w, _, _ in words).capitalize() + "."
    fmt = form.get("response_format") or "json"
    if fmt == "text":
        return web.Response(text=text + "\n", content_type="text/plain")
    if fmt == "verbose_json":
        return json_response(
            {
                "task": "transcribe",
                "language": str(form.get("language") or "english"),
                "duration": seconds,
                "text": text,
                "segments": [{"id": 0, "start": 0.0, "end": seconds, "text": text}],
                "words": [{"word": w, "start": s, "end": e} for w, s, e in words],
            }
        )
    return json_response({"text": text, "usage": {"type": "duration", "seconds": seconds}})


async def speech(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, ENDPOINT + ".speech", body=body)
    if isinstance(entered, web.Response):
        return entered
    text = body.get("input")
    if not isinstance(text, str) or not text:
        return error_response(400, "input is required", param="input")
    fmt = str(body.get("response_format") or "mp3")
    if fmt not in CONTENT_TYPES:
        return error_response(400, "unsupported response_format", param="response_format")
    return await stream_audio(request, synthesize(text, fmt), CONTENT_TYPES[fmt], {})


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/v1/audio/transcriptions", transcriptions),
    web.post("/v1/audio/speech", speech),
)
