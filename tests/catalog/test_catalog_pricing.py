"""Sale price math: margins exact in nanodollars, explicit prices, nothing free by accident."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from farebox.catalog import TokenPrices, catalog_from_dict
from farebox.catalog.pricing import apply_margin, decide, marked_up
from farebox.catalog.upstream_costs import UpstreamCost, lookup_cost


@pytest.mark.parametrize(
    ("nanos", "margin", "expected"),
    [
        (1_250_000_000, "0.20", 1_500_000_000),
        (1, "0.20", 2),  # 1.2 rounds up
        (5, "0.20", 6),  # exactly 6, no rounding
        (83_333_334, "0.15", 95_833_335),  # 95_833_334.1 rounds up
        (3_000_000_000, "0", 3_000_000_000),
        (3_000_000_000, "1.5", 7_500_000_000),
        (10, "0.333333333333333333333333333333", 14),  # 13.33... rounds up, no float error
        (0, "0.50", 0),
    ],
)
def test_apply_margin_is_exact(nanos: int, margin: str, expected: int) -> None:
    assert apply_margin(nanos, Decimal(margin)) == expected


def test_marked_up_keeps_missing_cache_prices_missing() -> None:
    cost = TokenPrices(input=100, output=200, cache_read=10)
    assert marked_up(cost, Decimal("0.1")) == TokenPrices(110, 220, 11, None)


def test_explicit_price_wins_and_zero_is_free() -> None:
    cost = UpstreamCost(TokenPrices(100, 200))
    free = TokenPrices(0, 0)
    pricing = decide(explicit=free, cost=cost, margin=Decimal(1), context=10, missing_cost="")
    assert pricing.price == free and pricing.is_free and pricing.cost == cost.prices
    paid = TokenPrices(50, 0)
    assert not decide(
        explicit=paid, cost=None, margin=Decimal(0), context=10, missing_cost=""
    ).is_free


def test_zero_cost_is_unpriced_not_free() -> None:
    cost = UpstreamCost(TokenPrices(0, 0))
    pricing = decide(explicit=None, cost=cost, margin=Decimal("0.2"), context=10, missing_cost="")
    assert pricing.price is None and "explicit price" in pricing.reason


def test_tiered_cost_refused_where_context_reaches_the_tier() -> None:
    cost = UpstreamCost(TokenPrices(100, 200), tier_threshold=200_000)
    ok = decide(explicit=None, cost=cost, margin=Decimal(0), context=200_000, missing_cost="")
    assert ok.price == TokenPrices(100, 200)
    too_big = decide(explicit=None, cost=cost, margin=Decimal(0), context=200_001, missing_cost="")
    assert too_big.price is None and "200000" in too_big.reason


def test_no_price_no_cost_is_unpriced() -> None:
    pricing = decide(explicit=None, cost=None, margin=Decimal(0), context=1, missing_cost="why")
    assert pricing.price is None and pricing.reason == "why"


def test_model_margin_overrides_default(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["beta"]["margin"] = "0.5"
    catalog = catalog_from_dict(doc, {}, at=at)
    beta = catalog.models["beta"]
    assert beta.cost == TokenPrices(1_250_000_000, 10_000_000_000, 125_000_000, None)
    assert beta.price == TokenPrices(1_875_000_000, 15_000_000_000, 187_500_000, None)
    embed = catalog.models["embed"]  # default margin 0.20, no output price upstream
    assert embed.price == TokenPrices(24_000_000, 0)


def test_hand_typed_cost_overrides_cost_ref(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["beta"]["cost"] = {"input_per_1m": "0.000000003", "output_per_1m": "1"}
    beta = catalog_from_dict(doc, {}, at=at).models["beta"]
    assert beta.cost == TokenPrices(3, 1_000_000_000)
    assert beta.price == TokenPrices(4, 1_200_000_000)  # ceil(3.6) = 4


def test_explicit_price_keeps_cost_for_margin_reports(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["beta"]["price"] = {
        "input_per_1m": "2",
        "output_per_1m": 11.5,
        "cache_read_per_1m": "0.2",
        "cache_write_per_1m": 0,
    }
    beta = catalog_from_dict(doc, {}, at=at).models["beta"]
    assert beta.price == TokenPrices(2_000_000_000, 11_500_000_000, 200_000_000, 0)
    assert beta.cost is not None and beta.cost.input == 1_250_000_000
    assert not beta.is_free


def test_deliberate_free_model(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["alpha"]["price"] = {"input_per_1m": "0", "output_per_1m": "0"}
    alpha = catalog_from_dict(doc, {}, at=at).models["alpha"]
    assert alpha.is_free and alpha.price == TokenPrices(0, 0)


def test_time_of_day_prices_use_the_peak_rate(at: datetime) -> None:
    # DeepSeek's direct API is cheaper off-peak; a derived sale price must cover the peak rate.
    cost = lookup_cost("deepseek", "deepseek-chat", at=at)
    assert cost.prices.input == 270_000_000 and cost.prices.output == 1_100_000_000


def test_tiered_upstream_reports_its_threshold(at: datetime) -> None:
    cost = lookup_cost("google", "gemini-2.5-pro", at=at)
    assert cost.tier_threshold == 200_000
    assert cost.prices.input == 1_250_000_000  # the base rate
