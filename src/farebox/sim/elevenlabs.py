"""ElevenLabs: `POST /v1/text-to-speech/{voice_id}[/stream]?output_format=mp3_44100_128` with
`{"text", "model_id"}` and `xi-api-key`; audio streams back with `x-character-count`."""

from __future__ import annotations

from aiohttp import web

from farebox.sim.audio_common import stream_audio, synthesize
from farebox.sim.media_base import enter
from farebox.sim.openai_base import error_response, read_json_object

FORMATS = {
    "mp3": ("mp3", "audio/mpeg"),
    "pcm": ("pcm", "audio/pcm"),
    "wav": ("wav", "audio/wav"),
    "opus": ("opus", "audio/ogg"),
}


async def text_to_speech(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, "elevenlabs.tts", scheme="xi-api-key", body=body)
    if isinstance(entered, web.Response):
        return entered
    text = body.get("text")
    if not isinstance(text, str) or not text:
        return error_response(422, "text is required")
    if len(text) > 5000:
        return error_response(400, "text is too long (5000 characters at most)")
    output = request.query.get("output_format", "mp3_44100_128")
    fmt, content_type = FORMATS.get(output.split("_")[0], FORMATS["mp3"])
    headers = {"x-character-count": str(len(text)), "request-id": request.match_info["voice"]}
    return await stream_audio(request, synthesize(text, fmt), content_type, headers)


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/v1/text-to-speech/{voice}", text_to_speech),
    web.post("/v1/text-to-speech/{voice}/stream", text_to_speech),
)
