"""The gateway's Prometheus series, and the pre-bound children the hot path uses.

One Metrics per app (no global registry). With several worker processes (`--workers N`) the
values live in prometheus_client's multiprocess files (observe/multiproc.py) and a scrape of any
worker reads them all; figures read from the shared database are not here but in
observe/db_figures.py, exported apart because they must not be summed across replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from farebox.money import NANOS_PER_USD
from farebox.observe.labels import ModelLabels

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    """Every series farebox exports (docs/operators/metrics-and-logs.md describes them)."""

    def __init__(self, models: Iterable[str], multiprocess_dir: str | None) -> None:
        self.model_label = ModelLabels(models)
        self.multiprocess = multiprocess_dir is not None
        own = None if self.multiprocess else CollectorRegistry(auto_describe=False)
        self.registry = own if own is not None else CollectorRegistry(auto_describe=False)
        if multiprocess_dir is not None:
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        reg: Any = own  # None: the values go to the multiprocess files only

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, labels, registry=reg)

        def histogram(
            name: str, doc: str, labels: Sequence[str], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(name, doc, labels, registry=reg, buckets=buckets)

        self.requests = counter(
            "farebox_requests",
            "Requests answered, by route template, status and model.",
            ("route", "status", "model"),
        )
        self.duration = histogram(
            "farebox_request_duration_seconds",
            "Whole request, first byte in to last byte out (a stream's whole length).",
            ("route",),
            _SLOW,
        )
        self.ttfb = histogram(
            "farebox_time_to_first_byte_seconds",
            "Request received to the response's status line (a stream's first byte).",
            ("route",),
            _SLOW,
        )
        self.gateway = histogram(
            "farebox_gateway_overhead_seconds",
            "Latency farebox adds to a request that called an upstream: time to first byte "
            "minus the time spent waiting for upstreams.",
            ("route",),
            _FAST,
        )
        self.upstream = histogram(
            "farebox_upstream_seconds",
            "One upstream attempt, request sent to its first answer (headers, or a stream's "
            "first chunk), failed attempts included.",
            ("provider", "model"),
            _SLOW,
        )
        self.upstream_failures = counter(
            "farebox_upstream_failures",
            "Upstream attempts that failed, by route (provider and model) and reason.",
            ("provider", "model", "reason"),
        )
        self.fallbacks = counter(
            "farebox_upstream_fallbacks",
            "Requests moved on from this route (provider and model) to the next one after a "
            "retryable failure.",
            ("provider", "model"),
        )
        self.breaker = Gauge(
            "farebox_route_breaker_state",
            "A route's circuit breaker: 0 closed, 1 half-open (probing), 2 open (resting). "
            "With several workers, the worst state any live worker has.",
            ("provider", "upstream_model"),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.revenue = counter(
            "farebox_revenue_usd",
            "What settled requests charged customers (committed settlements), by model.",
            ("model",),
        )
        self.upstream_cost = counter(
            "farebox_upstream_cost_usd",
            "The upstream's cost of settled requests, by model, for models whose catalog entry "
            "gives a token cost.",
            ("model",),
        )
        self.topups = counter(
            "farebox_topups",
            "Top-up invoices, by outcome: created, paid (credited), expired, underpaid, paid_late, "
            "invalid.",
            ("outcome",),
        )
        self.nwc = counter(
            "farebox_nwc_attempts",
            "Automatic NWC top-up attempts, by outcome (paid, unconfirmed, failed).",
            ("outcome",),
        )
        self._request_children: dict[tuple[str, str, str], Callable[..., None]] = {}
        self._route_children: dict[str, tuple[Histogram, Histogram, Histogram]] = {}
        self._money_children: dict[str | None, tuple[Callable[..., None], ...]] = {}

    def request_done(
        self,
        route: str,
        status: int,
        model: str | None,
        ttfb_s: float | None,
        duration_s: float,
        upstream_s: float,
    ) -> None:
        """The hot path's one call per request: label children are bound once and reused."""
        key = (route, str(status), self.model_label(model))
        inc = self._request_children.get(key)
        if inc is None:
            inc = self._request_children[key] = self.requests.labels(*key).inc
        inc()
        children = self._route_children.get(route)
        if children is None:
            children = self._route_children[route] = (
                self.duration.labels(route),
                self.ttfb.labels(route),
                self.gateway.labels(route),
            )
        duration, ttfb, gateway = children
        duration.observe(duration_s)
        if ttfb_s is not None:
            ttfb.observe(ttfb_s)
            if upstream_s > 0.0:
                gateway.observe(max(ttfb_s - upstream_s, 0.0))

    def settled(self, model: str | None, charged_nanos: int, cost_nanos: int | None) -> None:
        """One committed settlement (called for each, in the ledger's batch)."""
        children = self._money_children.get(model)
        if children is None:
            label = self.model_label(model)
            children = (self.revenue.labels(label).inc, self.upstream_cost.labels(label).inc)
            if len(self._money_children) < 10_000:  # model ids come from settlements: bounded
                self._money_children[model] = children
        revenue, cost = children
        if charged_nanos:
            revenue(charged_nanos / NANOS_PER_USD)
        if cost_nanos:
            cost(cost_nanos / NANOS_PER_USD)
