"""The router's and payments' events counted in the metrics (observe.install wires them)."""

from __future__ import annotations

from farebox.observe.hooks import CountEvents, RouteEvents
from farebox.observe.labels import failure_reason
from farebox.observe.metrics import BREAKER_STATES, Metrics


class MetricRouteEvents(RouteEvents):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self._breakers: dict[tuple[str, str], str] = {}

    def attempt(self, provider: str, model: str, seconds: float) -> None:
        self.m.upstream_attempt(provider, model, seconds)

    def failed(self, provider: str, model: str, status: int | None, message: str) -> None:
        self.m.upstream_failures.labels(provider, model, failure_reason(status, message)).inc()

    def fallback(self, provider: str, model: str) -> None:
        self.m.fallbacks.labels(provider, model).inc()

    def breaker(self, provider: str, upstream_model: str, state: str) -> None:
        key = (provider, upstream_model)
        if self._breakers.get(key) == state:
            return  # the hot path: nothing changed, nothing written
        self._breakers[key] = state
        self.m.breaker.labels(provider, upstream_model).set(BREAKER_STATES.get(state, 2))


class MetricCountEvents(CountEvents):
    _TOPUP = frozenset({"created", "paid", "expired", "underpaid", "paid_late", "invalid"})
    _NWC = frozenset({"paid", "unconfirmed", "failed"})

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def topup(self, outcome: str) -> None:
        self.m.topups.labels(outcome if outcome in self._TOPUP else "other").inc()

    def nwc_attempt(self, outcome: str) -> None:
        self.m.nwc.labels(outcome if outcome in self._NWC else "other").inc()
