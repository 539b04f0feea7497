"""The sale price: the operator's explicit price or a margin over cost; never free by accident."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from farebox.money import ceil_div

from .cost_refs import UpstreamCost
from .model import TokenPrices


@dataclass(frozen=True, slots=True)
class Pricing:
    """What a catalog entry sells at. `price` None means unpriced, and `reason` says why."""

    price: TokenPrices | None
    cost: TokenPrices | None
    is_free: bool = False
    reason: str = ""


def apply_margin(nanos: int, margin: Decimal) -> int:
    """ceil(nanos × (1 + margin)), exactly, in integer nanodollars."""
    numerator, denominator = (1 + margin).as_integer_ratio()
    return ceil_div(nanos * numerator, denominator)


def marked_up(cost: TokenPrices, margin: Decimal) -> TokenPrices:
    """Every rate of `cost` raised by `margin`."""
    return TokenPrices(
        input=apply_margin(cost.input, margin),
        output=apply_margin(cost.output, margin),
        cache_read=None if cost.cache_read is None else apply_margin(cost.cache_read, margin),
        cache_write=None if cost.cache_write is None else apply_margin(cost.cache_write, margin),
    )


def is_zero(prices: TokenPrices) -> bool:
    return not any((prices.input, prices.output, prices.cache_read, prices.cache_write))


def decide(
    *,
    explicit: TokenPrices | None,
    cost: UpstreamCost | None,
    margin: Decimal,
    context: int,
    missing_cost: str,
) -> Pricing:
    """Explicit price first; else cost × (1 + margin); else unpriced with `missing_cost` as reason.

    A derived price is refused where it could sell below cost: a zero cost (only an explicit "0"
    price makes a free model) or a tiered cost whose higher tier the model's context can reach.
    """
    cost_prices = cost.prices if cost is not None else None
    if explicit is not None:
        return Pricing(price=explicit, cost=cost_prices, is_free=is_zero(explicit))
    if cost is None:
        return Pricing(price=None, cost=None, reason=missing_cost)
    if cost.tier_threshold is not None and context > cost.tier_threshold:
        return Pricing(
            price=None,
            cost=cost.prices,
            reason=(
                f"upstream charges a higher rate above {cost.tier_threshold} input tokens but "
                f"the context is {context}; lower the context to {cost.tier_threshold} or set "
                "an explicit price"
            ),
        )
    sale = marked_up(cost.prices, margin)
    if is_zero(sale):
        return Pricing(
            price=None,
            cost=cost.prices,
            reason='upstream cost is 0; set an explicit price ("0" for a deliberate free model)',
        )
    return Pricing(price=sale, cost=cost.prices)
