"""One paid speech request: check the text and voice, hold its characters' price, stream the
audio back as the upstream sends it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from farebox.audio.pricing import KCHARS, speech_cost, unit
from farebox.audio.types import SPEECH_CONTENT_TYPES, SPEECH_FORMATS, SpeechJob, SpeechReply
from farebox.catalog.model import Catalog, CatalogModel, Route
from farebox.errors import InvalidRequest, quoted
from farebox.keys.store import ApiKey
from farebox.ledger.types import QueryRecord
from farebox.modalities.paid import PaidResult, Payer, call_capability, require_type
from farebox.providers.router import Router

DEFAULT_MODEL = "aura-2-arcas-en"
KNOWN = frozenset({"model", "input", "voice", "response_format", "speed", "instructions"})


def _voice(model: CatalogModel, requested_model: str, voice: Any) -> str | None:
    ids = [v.id for v in model.voices]
    if voice is None or voice == "":
        if requested_model in ids:
            return requested_model  # the model was named by one of its voices
        return ids[0] if ids else None
    if not isinstance(voice, str):
        raise InvalidRequest("voice must be a string.", param="voice")
    if ids and voice not in ids:
        raise InvalidRequest(
            f"{model.id} has no voice {quoted(voice)}. See GET /v1/audio/voices for its voices.",
            param="voice",
        )
    return voice


def read_speech(body: dict[str, Any], catalog: Catalog) -> tuple[CatalogModel, SpeechJob]:
    requested = body.get("model") or DEFAULT_MODEL
    if not isinstance(requested, str):
        raise InvalidRequest("model must be a string.", param="model")
    model = catalog.resolve(requested)
    require_type(model, "speech", endpoint="/v1/audio/speech")
    for name in body:
        if name not in KNOWN:
            raise InvalidRequest(f"Unknown parameter {quoted(name)}.", param=name)
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("input (the text to speak) is required.", param="input")
    if model.max_input_chars is not None and len(text) > model.max_input_chars:
        raise InvalidRequest(
            f"input is {len(text)} characters; {model.id} speaks at most "
            f"{model.max_input_chars} per request.",
            param="input",
        )
    fmt = body.get("response_format") or "mp3"
    allowed = model.parameters.get("response_format") or SPEECH_FORMATS
    if fmt not in allowed:
        raise InvalidRequest(
            f"{model.id} offers response_format {', '.join(allowed)}.", param="response_format"
        )
    speed = body.get("speed")
    if speed is not None:
        if "speed" not in model.parameters:
            raise InvalidRequest(f"{model.id} does not accept speed.", param="speed")
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4:
            raise InvalidRequest("speed must be a number from 0.25 to 4.", param="speed")
    voice = _voice(model, requested, body.get("voice"))
    return model, SpeechJob(text, voice, fmt, float(speed) if speed is not None else None)


class SpeechService:
    def __init__(self, catalog: Catalog, router: Router, payer: Payer) -> None:
        self.catalog = catalog
        self.router = router
        self.payer = payer

    async def speak(self, key: ApiKey, body: dict[str, Any], source: str = "api") -> PaidResult:
        model, job = read_speech(body, self.catalog)
        per_thousand = unit(model, KCHARS)
        quote = speech_cost(per_thousand, len(job.text))
        charge = self.payer.charge(key, model)
        held = await charge.open(quote, quote)

        async def attempt(provider: Any, route: Route) -> SpeechReply:
            reply: SpeechReply = await provider.speak(route.upstream_model, job)
            return reply

        try:
            spoken = await call_capability(self.router, model, "speak", attempt)
        except BaseException:
            charge.void()
            raise
        characters = spoken.characters if spoken.characters is not None else len(job.text)
        cost = min(speech_cost(per_thousand, characters), held)
        # The upstream has accepted (and bills) the text once audio flows: settle now, so the
        # cost is known for the response headers.
        charge.settle(
            cost,
            QueryRecord(
                model=model.id,
                input_count=characters,
                output_count=0,
                query_type="speech",
                query_source=source,
                is_free_model=model.is_free,
            ),
        )
        return PaidResult(
            cost_nanos=cost,
            request_id=charge.request_id,
            media_type=SPEECH_CONTENT_TYPES[job.response_format],
            stream=_relay(spoken),
        )


async def _relay(spoken: SpeechReply) -> AsyncIterator[bytes]:
    try:
        async for chunk in spoken.reply.chunks():
            yield chunk
    finally:
        spoken.reply.close()
