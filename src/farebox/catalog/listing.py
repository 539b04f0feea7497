"""`GET /v1/models`: OpenAI's list shape plus PayPerQ's columns (pricing, cost per prompt)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from farebox.money import NANOS_PER_USD, TOKENS_PER_MILLION, ceil_div, nanos_to_usd

from .model import UNIT_PRICED_TYPES, Catalog, CatalogModel, TokenPrices
from .units import default_unit_price

AVERAGE_PROMPT_INPUT_TOKENS = 1_000
AVERAGE_PROMPT_OUTPUT_TOKENS = 500
"""PayPerQ's "Average Cost" and "Prompts / $1" assume a prompt of this size."""


def average_prompt_nanos(price: TokenPrices) -> int:
    """The sale price of one average prompt, in nanodollars (rounded up)."""
    total = AVERAGE_PROMPT_INPUT_TOKENS * price.input + AVERAGE_PROMPT_OUTPUT_TOKENS * price.output
    return ceil_div(total, TOKENS_PER_MILLION)


def prompts_per_usd(price: TokenPrices) -> int | None:
    """Whole average prompts one dollar buys; None for a free model."""
    cost = average_prompt_nanos(price)
    return NANOS_PER_USD // cost if cost else None


def models_payload(catalog: Catalog, type_filter: str | None = None) -> dict[str, Any]:
    """`{"object": "list", "data": [...]}` for the priced models of the given types."""
    return {"object": "list", "data": [model_entry(m) for m in catalog.list(type_filter)]}


def model_entry(model: CatalogModel) -> dict[str, Any]:
    """One model as OpenAI's model object plus PayPerQ's attributes. Aliases are listed inside."""
    price = model.price
    entry = {
        "id": model.id,
        "object": "model",
        "created": _unix(model.date_added),
        "owned_by": model.provider,
        "name": model.name,
        "provider": model.provider,
        "type": model.type,
        "description": model.description,
        "context_length": model.context,
        "max_output_tokens": model.max_output,
        "date_added": model.date_added,
        "aliases": list(model.aliases),
        "is_free": model.is_free,
        "pricing": {
            "input_per_1m_usd": nanos_to_usd(price.input),
            "output_per_1m_usd": nanos_to_usd(price.output),
            "cache_read_per_1m_usd": _usd_or_none(price.cache_read),
            "cache_write_per_1m_usd": _usd_or_none(price.cache_write),
        },
        "average_cost_usd": nanos_to_usd(average_prompt_nanos(price)),
        "prompts_per_usd": prompts_per_usd(price),
    }
    entry.update(media_attributes(model))
    return entry


def media_attributes(model: CatalogModel) -> dict[str, Any]:
    """Unit prices, accepted parameters and voices, for the models that have them."""
    extra: dict[str, Any] = {}
    if model.unit_prices:
        extra["unit_pricing_usd"] = {
            unit: nanos_to_usd(nanos) for unit, nanos in model.unit_prices.items()
        }
    if model.type in UNIT_PRICED_TYPES and model.unit_prices:
        # Sold per unit, not per token: no context window; the "average" is one unit (an image,
        # a second, a minute, 1K characters) with the options a request gets by default.
        extra["context_length"] = None
        extra["max_output_tokens"] = None
        unit = default_unit_price(model)
        if unit is None:
            unit = min(model.unit_prices.values())
        extra["average_cost_usd"] = nanos_to_usd(unit)
        extra["prompts_per_usd"] = NANOS_PER_USD // unit if unit else None
    if model.parameters:
        extra["parameters"] = {name: list(vals) for name, vals in model.parameters.items()}
    if model.required:
        extra["required"] = list(model.required)
    if model.voices:
        extra["voices"] = [v.id for v in model.voices]
    if model.max_input_chars is not None:
        extra["max_input_chars"] = model.max_input_chars
    if model.dimensions is not None:
        extra["dimensions"] = model.dimensions
    if model.private:  # end-to-end encrypted: only through an EHBP client (the private proxy)
        extra["private"] = True
        extra["enclave_model"] = model.routes[0].upstream_model
        extra["attestation_url"] = "/private/attestation"
    if model.image_tokens is not None:
        extra["image_tokens"] = model.image_tokens
    if model.web_search is not None:  # the web plugin uses the provider's own search
        extra["web_search"] = model.web_search
    return extra


def _unix(iso_date: str) -> int:
    day = date.fromisoformat(iso_date)
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _usd_or_none(nanos: int | None) -> float | None:
    return None if nanos is None else nanos_to_usd(nanos)
