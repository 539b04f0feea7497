"""The gateway's Prometheus series, and the pre-bound children the hot path uses.

One Metrics per app (no global registry). With several worker processes (`--workers N`) the
values live in prometheus_client's multiprocess files (observe/multiproc.py) and a scrape of any
worker reads them all; figures read from the shared database are not here but in
observe/db_figures.py, exported apart because they must not be summed across replicas.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from farebox.money import NANOS_PER_USD
from farebox.observe.context import Record
from farebox.observe.labels import ModelLabels

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MAX_ATTEMPTS = 10_000  # upstream attempts kept for the next flush before they are observed at once
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
FLUSH_S = 0.5
"""How often a process moves what its requests counted into the Prometheus values (a scrape of
this process flushes first; with several workers, another worker's last half second may be
missing from a scrape and is in the next)."""


class Tally:
    """One histogram child's observations since the last flush: plain counts per bucket and a
    sum, no lock (only the event loop's thread writes them), moved into the child's values by
    `flush`. prometheus_client's `observe` takes a lock for the sum and for the bucket on every
    call; at one call per request and route that was most of the metrics' cost."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Any, bounds: Sequence[float]) -> None:
        self.child = child
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value, as `le`
        self.total += value

    def flush(self) -> None:
        counts, total = self.counts, self.total
        if not any(counts):
            return
        self.counts, self.total = [0] * len(counts), 0.0
        buckets = self.child._buckets  # prometheus_client 0.26's Histogram child (pinned)
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
        self.child._sum.inc(total)


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
        self._request_counts: dict[tuple[str, int, str], int] = {}  # since the last flush
        self._request_children: dict[tuple[str, int, str], Callable[..., None]] = {}
        self.before_flush: Callable[[], None] | None = None  # hands over requests not yet counted
        self._route_tallies: dict[str, tuple[Tally, Tally, Tally]] = {}
        self._upstream_tallies: dict[tuple[str, str], Tally] = {}
        self._attempts: list[tuple[str, str, float]] = []  # (provider, model, seconds) to observe
        self._money_children: dict[str, tuple[Callable[..., None], ...]] = {}
        self._money: dict[str | None, list[int]] = {}  # by model id, since the last flush

    def flush(self) -> None:
        """Move what requests counted since the last flush into the Prometheus values (the
        multiprocess files with several workers). Before a scrape, every FLUSH_S, at exit."""
        if self.before_flush is not None:
            self.before_flush()
        pending, self._request_counts = self._request_counts, {}
        for key, n in pending.items():
            inc = self._request_children.get(key)
            if inc is None:
                route, status, model = key
                inc = self._request_children[key] = self.requests.labels(
                    route, str(status), model
                ).inc
            inc(n)
        money, self._money = self._money, {}
        for model_id, (charged, cost) in money.items():
            label = self.model_label(model_id)  # model ids come from settlements: bounded labels
            children = self._money_children.get(label)
            if children is None:
                children = self._money_children[label] = (
                    self.revenue.labels(label).inc,
                    self.upstream_cost.labels(label).inc,
                )
            if charged:
                children[0](charged / NANOS_PER_USD)
            if cost:
                children[1](cost / NANOS_PER_USD)
        for tallies in self._route_tallies.values():
            for tally in tallies:
                tally.flush()
        self._observe_attempts()
        for tally in self._upstream_tallies.values():
            tally.flush()

    def upstream_attempt(self, provider: str, model: str, seconds: float) -> None:
        """One upstream attempt's time to its first answer (the router reports each): kept as
        it is until `flush` observes the batch (or now, past MAX_ATTEMPTS: memory stays bounded
        even with no flusher running)."""
        attempts = self._attempts
        attempts.append((provider, model, seconds))
        if len(attempts) >= MAX_ATTEMPTS:
            self._observe_attempts()

    def _observe_attempts(self) -> None:
        attempts, self._attempts = self._attempts, []
        tallies = self._upstream_tallies
        for provider, model, seconds in attempts:
            tally = tallies.get((provider, model))
            if tally is None:
                tally = tallies[(provider, model)] = Tally(
                    self.upstream.labels(provider, model), _SLOW
                )
            tally.observe(seconds)

    def requests_done(self, records: Iterable[Record]) -> None:
        """Finished requests (observe/finished.py hands them over in batches): counted in plain
        numbers until `flush`, in one loop (off the request path: the batch is handed over every
        0.1 s)."""
        counts = self._request_counts
        route_tallies = self._route_tallies
        for _, _, route, status, model, _, upstream_s, _, duration_s, ttfb_s in records:
            key = (route, status, model)
            counts[key] = counts.get(key, 0) + 1
            tallies = route_tallies.get(route)
            if tallies is None:
                tallies = route_tallies[route] = (
                    Tally(self.duration.labels(route), _SLOW),
                    Tally(self.ttfb.labels(route), _SLOW),
                    Tally(self.gateway.labels(route), _FAST),
                )
            duration, ttfb, gateway = tallies
            duration.observe(duration_s)
            if ttfb_s is not None:
                ttfb.observe(ttfb_s)
                if upstream_s > 0.0:
                    gateway.observe(max(ttfb_s - upstream_s, 0.0))

    def settled(self, model: str | None, charged_nanos: int, cost_nanos: int | None) -> None:
        """One committed settlement (called for each, in the ledger's batch): summed in integer
        nanodollars until `flush`."""
        sums = self._money.get(model)
        if sums is None:
            sums = self._money[model] = [0, 0]
        sums[0] += charged_nanos
        if cost_nanos:
            sums[1] += cost_nanos
