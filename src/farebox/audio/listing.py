"""GET /v1/audio/models (speech-to-text models and prices) and GET /v1/audio/voices."""

from __future__ import annotations

from typing import Any

from farebox.audio.pricing import KCHARS, MINUTE
from farebox.catalog.model import Catalog
from farebox.money import nanos_to_usd


def audio_models(catalog: Catalog) -> dict[str, Any]:
    data = []
    for model in catalog.list("audio"):
        per_minute = model.unit_prices.get(MINUTE)
        data.append(
            {
                "id": model.id,
                "object": "model",
                "name": model.name,
                "provider": model.provider,
                "type": "audio",
                "aliases": list(model.aliases),
                "description": model.description,
                "is_free": model.is_free,
                "price_per_minute_usd": None if per_minute is None else nanos_to_usd(per_minute),
                "response_formats": ["json", "text", "srt", "vtt", "verbose_json"],
            }
        )
    return {"object": "list", "data": data}


def audio_voices(catalog: Catalog) -> dict[str, Any]:
    data = []
    for model in catalog.list("speech"):
        per_k = model.unit_prices.get(KCHARS)
        for voice in model.voices:
            data.append(
                {
                    "id": voice.id,
                    "name": voice.name,
                    "description": voice.description,
                    "provider": model.provider,
                    "model": model.id,
                    "max_input_chars": model.max_input_chars,
                    "price_per_1k_chars_usd": None if per_k is None else nanos_to_usd(per_k),
                }
            )
    return {"object": "list", "data": data}
