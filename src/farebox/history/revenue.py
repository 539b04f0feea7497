"""The operator's revenue report: what customers were charged, what the upstreams cost for the
same usage, and the margin between them, per UTC day, per model and per provider.

Revenue is the history's charges (every paid request writes one row, 402 payers' included).
Upstream cost is the catalog's cost (from genai-prices) applied to the token counts the history
recorded; a model sold per unit (images, audio, video, data) or with no known cost counts as
unknown cost, and its revenue is reported apart rather than as pure margin. "Provider" is the
model's provider in the catalog (the history does not record which route served a request).
Costs use the current catalog: a price changed since then shows at today's rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from farebox.catalog.model import Catalog
from farebox.history.usage import DailyUsage
from farebox.money import per_million_cost


@dataclass
class RevenueLine:
    """Revenue, known upstream cost and margin of one group (a day, a model or a provider)."""

    name: str
    requests: int = 0
    revenue: int = 0
    cost: int = 0  # upstream cost of the requests whose cost is known
    revenue_without_cost: int = 0  # revenue of requests whose upstream cost is unknown

    @property
    def margin(self) -> int:
        """Revenue minus upstream cost, over the requests whose cost is known."""
        return self.revenue - self.revenue_without_cost - self.cost

    def add(self, requests: int, revenue: int, cost: int | None) -> None:
        self.requests += requests
        self.revenue += revenue
        if cost is None:
            self.revenue_without_cost += revenue
        else:
            self.cost += cost


@dataclass
class RevenueReport:
    total: RevenueLine = field(default_factory=lambda: RevenueLine("total"))
    by_day: list[RevenueLine] = field(default_factory=list)
    by_model: list[RevenueLine] = field(default_factory=list)
    by_provider: list[RevenueLine] = field(default_factory=list)


def upstream_cost(catalog: Catalog, row: DailyUsage) -> int | None:
    """The upstream cost of a day's tokens of one model; None when it is unknown."""
    model = catalog.models.get(row.model)
    if model is None or model.cost is None or model.unit_prices:
        return None
    return per_million_cost(row.input_count, model.cost.input) + per_million_cost(
        row.output_count, model.cost.output
    )


def provider_of(catalog: Catalog, model_id: str) -> str:
    model = catalog.models.get(model_id)
    return model.provider if model is not None else "(not in the catalog)"


def revenue_report(catalog: Catalog, rows: Iterable[DailyUsage], days: list[date]) -> RevenueReport:
    """Sum `rows` by day (every day of `days`, empty ones included), model and provider; models
    and providers by revenue, highest first."""
    report = RevenueReport()
    by_day = {d: RevenueLine(d.isoformat()) for d in days}
    by_model: dict[str, RevenueLine] = defaultdict(lambda: RevenueLine(""))
    by_provider: dict[str, RevenueLine] = defaultdict(lambda: RevenueLine(""))
    for row in rows:
        cost = upstream_cost(catalog, row)
        line = by_day.setdefault(row.day, RevenueLine(row.day.isoformat()))
        for target in (
            report.total,
            line,
            by_model[row.model],
            by_provider[provider_of(catalog, row.model)],
        ):
            target.add(row.requests, row.spent, cost)
    for name, line in by_model.items():
        line.name = name
    for name, line in by_provider.items():
        line.name = name
    report.by_day = [by_day[d] for d in sorted(by_day)]
    report.by_model = sorted(by_model.values(), key=lambda x: (-x.revenue, x.name))
    report.by_provider = sorted(by_provider.values(), key=lambda x: (-x.revenue, x.name))
    return report
