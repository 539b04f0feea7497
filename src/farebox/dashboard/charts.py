"""Stacked bar charts drawn on the server as SVG geometry: no chart library, no script.

`stacked_bars` turns series of integer amounts (nanodollars) per day into rectangles in a fixed
viewBox; the template (`_chart.html`) draws them with CSS classes for colours and a `<title>` per
bar, and the page shows the same numbers in a table for keyboards and screen readers. Text in a
chart (model names) goes through the template's autoescaping like everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from farebox.dashboard.web import usd

WIDTH = 720
HEIGHT = 240
LEFT = 64  # room for the amounts on the axis
BOTTOM = 28  # room for the dates
TOP = 8
PALETTE = 8  # CSS classes s0 … s7; further series share the last ("other")


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    text: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[int, str]] = field(default_factory=list)
    empty: bool = True


def top_series(
    totals: Mapping[str, int], limit: int = PALETTE - 1, other: str = "other"
) -> dict[str, str]:
    """Name -> the series it is drawn in: the `limit` largest by total, the rest as `other`."""
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    keep = ranked[:limit]
    return {name: (name if name in keep else other) for name in ranked}


def stacked_bars(
    days: Sequence[str], series: Mapping[str, Sequence[int]], names: Sequence[str] | None = None
) -> Chart:
    """One bar per day, stacked by series (`series[name][i]` is day i's amount, >= 0)."""
    chart = Chart()
    order = list(names if names is not None else series)
    chart.legend = [(min(i, PALETTE - 1), name) for i, name in enumerate(order)]
    totals = [sum(max(0, series[name][i]) for name in order) for i in range(len(days))]
    peak = max(totals, default=0)
    if not days:
        return chart
    chart.empty = peak == 0
    scale_top = _nice_ceiling(peak) if peak else 1
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - 8
    slot = plot_w / len(days)
    bar_w = max(1.0, slot * 0.7)
    for step in range(5):
        value = scale_top * step // 4
        y = TOP + plot_h - plot_h * step / 4
        chart.ticks.append(Tick(round(y, 2), usd(value)))
    every = max(1, len(days) // 8)  # at most ~8 date labels
    for i, day in enumerate(days):
        x = LEFT + slot * i + (slot - bar_w) / 2
        if i % every == 0 or i == len(days) - 1:
            chart.labels.append(Label(round(x + bar_w / 2, 2), day[5:]))
        base = float(TOP + plot_h)
        for index, name in enumerate(order):
            amount = max(0, series[name][i])
            if not amount:
                continue
            h = plot_h * amount / scale_top
            base -= h
            chart.bars.append(
                Bar(
                    round(x, 2),
                    round(base, 2),
                    round(bar_w, 2),
                    round(max(h, 0.5), 2),
                    min(index, PALETTE - 1),
                    f"{day} · {name}: {usd(amount)}",
                )
            )
    return chart


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^n (in nanodollars) at or above `value`, for round ticks."""
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude
