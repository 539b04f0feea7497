"""Prices to nanodollars: exact integers, rounded up to a nanodollar, never below cost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from farebox.billing.pricing import TokenUsage, output_cost, tokens_for_budget, usage_cost
from farebox.catalog.model import TokenPrices
from farebox.money import format_usd, usd_to_nanos

PRICES = TokenPrices(input=1_250_000_000, output=10_000_000_000, cache_read=125_000_000)


def test_usage_cost_prices_cached_tokens_at_the_cache_rate() -> None:
    usage = TokenUsage(prompt_tokens=1_000, completion_tokens=100, cached_tokens=400)
    # 600 plain at $1.25/M, 400 cached at $0.125/M, 100 out at $10/M
    assert usage_cost(PRICES, usage) == 750_000 + 50_000 + 1_000_000


@given(st.integers(0, 10**12), st.integers(1, 10**13))
def test_tokens_for_budget_never_exceeds_the_budget(budget: int, rate: int) -> None:
    prices = TokenPrices(input=rate, output=rate)
    tokens = tokens_for_budget(rate, budget)
    assert output_cost(prices, tokens) <= budget
    assert output_cost(prices, tokens + 1) > budget


def test_money_round_trips_exactly() -> None:
    assert usd_to_nanos("0.000000001") == 1
    assert usd_to_nanos(0.1) == 100_000_000
    assert format_usd(50_400) == "0.0000504"
    assert format_usd(0) == "0"
    assert format_usd(-1_500_000_000) == "-1.5"
