"""Unit prices for audio: per minute of input audio, per 1,000 characters of speech."""

from __future__ import annotations

import math

from farebox.catalog.model import CatalogModel
from farebox.errors import UnpricedModel
from farebox.money import ceil_div

MINUTE = "minute"
KCHARS = "1k_chars"


def unit(model: CatalogModel, name: str) -> int:
    if name not in model.unit_prices:
        raise UnpricedModel(
            f"{model.id} has no {name!r} price, so it cannot be used. Ask the operator to price it.",
            param="model",
        )
    return model.unit_prices[name]


def audio_cost(per_minute: int, seconds: float) -> int:
    """Nanodollars for `seconds` of audio, counted to the millisecond and rounded up."""
    ms = math.ceil(max(seconds, 0.0) * 1000)
    return ceil_div(ms * per_minute, 60_000)


def speech_cost(per_thousand: int, characters: int) -> int:
    return ceil_div(max(characters, 0) * per_thousand, 1000)
