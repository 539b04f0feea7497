"""`GET /v1/models` payload: OpenAI's list shape with PayPerQ's attributes and prices."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from farebox.catalog import (
    AVERAGE_PROMPT_INPUT_TOKENS,
    AVERAGE_PROMPT_OUTPUT_TOKENS,
    TokenPrices,
    average_prompt_nanos,
    catalog_from_dict,
    load_catalog,
    models_payload,
)
from farebox.catalog.listing import prompts_per_usd
from farebox.errors import InvalidRequest


def test_shape_and_attributes(doc: dict[str, Any], at: datetime) -> None:
    payload = models_payload(catalog_from_dict(doc, {}, at=at), None)
    assert payload["object"] == "list"
    assert [m["id"] for m in payload["data"]] == ["alpha", "beta", "embed"]  # no alias entries
    alpha = payload["data"][0]
    assert alpha == {
        "id": "alpha",
        "object": "model",
        "created": int(datetime(2025, 1, 2, tzinfo=UTC).timestamp()),
        "owned_by": "Acme",
        "name": "Alpha",
        "provider": "Acme",
        "type": "chat",
        "description": "",
        "context_length": 128000,
        "max_output_tokens": 16384,
        "date_added": "2025-01-02",
        "aliases": ["acme/alpha"],
        "is_free": False,
        "pricing": {
            "input_per_1m_usd": 1.5,
            "output_per_1m_usd": 12.0,
            "cache_read_per_1m_usd": None,
            "cache_write_per_1m_usd": None,
        },
        "average_cost_usd": 0.0075,  # 1000 × $1.50/M + 500 × $12/M
        "prompts_per_usd": 133,
    }
    orjson.dumps(payload)  # JSON-serialisable as is


def test_average_prompt_is_integer_math() -> None:
    assert (AVERAGE_PROMPT_INPUT_TOKENS, AVERAGE_PROMPT_OUTPUT_TOKENS) == (1000, 500)
    assert average_prompt_nanos(TokenPrices(1_500_000_000, 12_000_000_000)) == 7_500_000
    assert average_prompt_nanos(TokenPrices(1, 1)) == 1  # 0.0015 nanodollars rounds up
    assert average_prompt_nanos(TokenPrices(24_000_000, 0)) == 24_000
    assert prompts_per_usd(TokenPrices(24_000_000, 0)) == 41_666
    assert prompts_per_usd(TokenPrices(0, 0)) is None


def test_free_model_listing(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["alpha"]["price"] = {"input_per_1m": "0", "output_per_1m": "0"}
    alpha = models_payload(catalog_from_dict(doc, {}, at=at), "chat")["data"][0]
    assert alpha["is_free"] is True
    assert alpha["average_cost_usd"] == 0 and alpha["prompts_per_usd"] is None


def test_unpriced_models_are_not_listed(doc: dict[str, Any], at: datetime) -> None:
    del doc["models"]["alpha"]["price"]
    ids = [m["id"] for m in models_payload(catalog_from_dict(doc, {}, at=at), "all")["data"]]
    assert ids == ["beta", "embed"]


@pytest.mark.parametrize(
    ("type_filter", "expected"),
    [
        (None, ["alpha", "beta", "embed"]),
        ("all", ["alpha", "beta", "embed"]),
        ("chat", ["alpha", "beta"]),
        ("embedding", ["embed"]),
        ("chat,embedding", ["alpha", "beta", "embed"]),
        ("image,video", []),
    ],
)
def test_type_filter(
    doc: dict[str, Any], at: datetime, type_filter: str | None, expected: list[str]
) -> None:
    payload = models_payload(catalog_from_dict(doc, {}, at=at), type_filter)
    assert [m["id"] for m in payload["data"]] == expected


def test_invalid_type_filter(doc: dict[str, Any], at: datetime) -> None:
    with pytest.raises(InvalidRequest, match="Valid types: all, chat, embedding"):
        models_payload(catalog_from_dict(doc, {}, at=at), "hologram")


def test_shipped_catalog_listing(at: datetime) -> None:
    payload = models_payload(load_catalog(env={}, at=at), "all")
    gpt5 = next(m for m in payload["data"] if m["id"] == "gpt-5")
    assert gpt5["pricing"]["input_per_1m_usd"] == 1.5  # $1.25 upstream + 20 %
    assert gpt5["pricing"]["cache_read_per_1m_usd"] == 0.15
    assert gpt5["aliases"] == ["openai/gpt-5"]
    embeddings = models_payload(load_catalog(env={}, at=at), "embedding")["data"]
    assert {m["id"] for m in embeddings} == {
        "openai/text-embedding-3-small",
        "openai/text-embedding-3-large",
    }
