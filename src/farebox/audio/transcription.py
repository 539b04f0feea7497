"""One paid transcription: decode the upload to measure it, hold for that many minutes, call the
upstream, settle on the duration it reports, render the asked-for format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import UploadFile

from farebox.audio.decode import CONTENT_TYPES, audio_seconds, check_extension
from farebox.audio.pricing import MINUTE, audio_cost, unit
from farebox.audio.transcripts import FORMATS, Transcript, render
from farebox.audio.types import AudioInput
from farebox.catalog.model import Catalog, Route
from farebox.errors import InvalidRequest
from farebox.keys.store import ApiKey
from farebox.ledger.types import QueryRecord
from farebox.modalities.paid import PaidResult, Payer, call_capability, require_type, usd
from farebox.providers.router import Router

DEFAULT_MODEL = "nova-3"


MAX_PROMPT_CHARS = 2000
"""OpenAI takes a prompt of a few hundred tokens; Deepgram gets it as keyterms or keywords."""


class TranscriptionService:
    def __init__(self, catalog: Catalog, router: Router, payer: Payer) -> None:
        self.catalog = catalog
        self.router = router
        self.payer = payer

    async def transcribe(
        self,
        key: ApiKey,
        fields: Mapping[str, str],
        file: UploadFile | None,
        source: str = "api",
    ) -> PaidResult:
        model = self.catalog.resolve(fields.get("model") or DEFAULT_MODEL)
        require_type(model, "audio", endpoint="/v1/audio/transcriptions")
        fmt = fields.get("response_format") or "json"
        if fmt not in FORMATS:
            raise InvalidRequest(
                f"response_format must be one of {', '.join(FORMATS)}.", param="response_format"
            )
        if file is None:
            raise InvalidRequest("Upload the audio as the 'file' field.", param="file")
        prompt = fields.get("prompt")
        if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"prompt must be at most {MAX_PROMPT_CHARS} characters.", param="prompt"
            )
        ext = check_extension(file.filename)
        per_minute = unit(model, MINUTE)
        seconds = await audio_seconds(file.file)
        audio = AudioInput(
            data=await file.read(),
            filename=file.filename or f"audio.{ext or 'bin'}",
            content_type=CONTENT_TYPES.get(
                ext or "", file.content_type or "application/octet-stream"
            ),
            seconds=seconds,
            language=fields.get("language"),
            prompt=prompt,
        )
        quote = audio_cost(per_minute, seconds)
        charge = self.payer.charge(key, model)
        held = await charge.open(quote, quote)

        async def attempt(provider: Any, route: Route) -> Transcript:
            result: Transcript = await provider.transcribe(route.upstream_model, audio)
            return result

        try:
            transcript = await call_capability(self.router, model, "transcribe", attempt)
        except BaseException:
            charge.void()
            raise
        duration = transcript.duration_s if transcript.duration_s is not None else seconds
        cost = min(audio_cost(per_minute, duration), held)
        charge.settle(
            cost,
            QueryRecord(
                model=model.id,
                input_count=round(duration * 1000),
                output_count=len(transcript.text.split()),
                query_type="transcription",
                query_source=source,
                is_free_model=model.is_free,
            ),
        )
        body, media_type = render(transcript, fmt, duration, usd(cost))
        return PaidResult(
            cost_nanos=cost, request_id=charge.request_id, body=body, media_type=media_type
        )
