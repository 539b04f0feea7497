"""Upstream token costs from the `genai-prices` dataset (its shipped snapshot; never fetched).

Imported only while a catalog is priced (see cost_refs.py: a serving process runs this module
in a child process).

Two kinds of price the dataset has and `TokenPrices` does not are reduced safely:
- prices that change by time of day (e.g. DeepSeek's off-peak discount): the highest rate of
  the day is used, so a sale price derived from it never falls below cost;
- tiered prices (a higher rate above N input tokens): the base rate is used and N is reported
  as `tier_threshold`, so the loader can refuse a margin price where the tier could apply.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from genai_prices import data_snapshot
from genai_prices.types import (
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    TieredPrices,
    TimeOfDateConstraint,
)

from farebox.money import decimal_usd_to_nanos

from .cost_refs import CostNotFound, UpstreamCost
from .model import TokenPrices

__all__ = ["CostNotFound", "UpstreamCost", "lookup_cost"]

_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


def lookup_cost(
    provider: str, model: str, *, at: datetime, requires_output: bool = True
) -> UpstreamCost:
    """The cost genai-prices gives for `model` at `provider` on the date of `at`.

    `requires_output=False` (embeddings) reads a missing output price as 0.
    """
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError as exc:
        raise CostNotFound(f"genai-prices has no model {model!r} at provider {provider!r}") from exc
    candidates = _prices_in_effect(info, at)
    rates = {name: _highest(candidates, name) for name in _FIELDS}
    where = f"genai-prices {provider}/{model}"
    input_rate, output_rate = rates["input_mtok"], rates["output_mtok"]
    if input_rate is None:
        raise CostNotFound(f"{where} has no input token price")
    if output_rate is None:
        if requires_output:
            raise CostNotFound(f"{where} has no output token price")
        output_rate = Decimal(0)
    prices = TokenPrices(
        input=decimal_usd_to_nanos(input_rate),
        output=decimal_usd_to_nanos(output_rate),
        cache_read=_nanos_or_none(rates["cache_read_mtok"]),
        cache_write=_nanos_or_none(rates["cache_write_mtok"]),
    )
    return UpstreamCost(prices=prices, tier_threshold=_tier_threshold(candidates))


def _prices_in_effect(info: ModelInfo, at: datetime) -> list[ModelPrice]:
    """The price set in force on `at`'s date, plus every time-of-day price that can override it."""
    if isinstance(info.prices, ModelPrice):
        return [info.prices]
    conditional: list[ConditionalPrice] = info.prices
    found: list[ModelPrice] = []
    # genai-prices tries conditional prices last to first; the first active one wins.
    for entry in reversed(conditional):
        if isinstance(entry.constraint, TimeOfDateConstraint):
            found.append(entry.prices)
        elif entry.constraint is None or entry.constraint.active(at):
            found.append(entry.prices)
            return found
    found.append(conditional[0].prices)
    return found


def _highest(candidates: list[ModelPrice], name: str) -> Decimal | None:
    rates = [_base_rate(getattr(price, name, None)) for price in candidates]
    known = [rate for rate in rates if rate is not None]
    return max(known) if known else None


def _base_rate(value: object) -> Decimal | None:
    if isinstance(value, TieredPrices):
        return value.base
    if isinstance(value, Decimal):
        return value
    return None


def _tier_threshold(candidates: list[ModelPrice]) -> int | None:
    starts = [
        tier.start
        for price in candidates
        for name in _FIELDS
        if isinstance(value := getattr(price, name, None), TieredPrices)
        for tier in value.tiers
    ]
    return min(starts) if starts else None


def _nanos_or_none(rate: Decimal | None) -> int | None:
    return None if rate is None else decimal_usd_to_nanos(rate)
