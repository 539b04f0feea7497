"""POST /v1/audio/transcriptions (multipart), POST /v1/audio/speech (streamed audio),
GET /v1/audio/models and GET /v1/audio/voices (no auth)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.requests import read_json, require_key
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.uploads import read_multipart
from farebox.api.wire.media import SpeechRequest, TranscriptionForm
from farebox.api.wire.validate import validate
from farebox.audio.listing import audio_models, audio_voices

MAX_AUDIO_BYTES = 25 * 1024 * 1024
TEXT_FIELDS = ("model", "response_format", "language", "prompt", "temperature")


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes
    media = services.media

    async def transcriptions(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        upload = await read_multipart(request, MAX_AUDIO_BYTES, max_files=2)
        try:
            texts = {n: v for n in TEXT_FIELDS if (v := upload.text(n)) is not None}
            fields = validate(TranscriptionForm, texts).model_dump(exclude_unset=True)
            files = upload.files("file")
            result = await media.transcription.transcribe(key, fields, files[0] if files else None)
        finally:
            await upload.close()
        return paid_response(result)

    async def speech(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        body = validate(SpeechRequest, await read_json(request, limit))
        return paid_response(await media.speech.speak(key, body.model_dump(exclude_unset=True)))

    async def models(request: Request) -> Response:
        return JSONResponse(audio_models(services.catalog))

    async def voices(request: Request) -> Response:
        return JSONResponse(audio_voices(services.catalog))

    return [
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/v1/audio/speech", speech, methods=["POST"]),
        Route("/audio/speech", speech, methods=["POST"]),
        Route("/v1/audio/models", models, methods=["GET"]),
        Route("/audio/models", models, methods=["GET"]),
        Route("/v1/audio/voices", voices, methods=["GET"]),
        Route("/audio/voices", voices, methods=["GET"]),
    ]
