"""What the router, the top-ups and the NWC wallet tell the metrics (no-ops until app.py wires
observe.install): one small interface each, so those modules do not depend on Prometheus."""

from __future__ import annotations


class RouteEvents:
    """The router's events; this base class ignores them (a Router built outside an app)."""

    def attempt(self, provider: str, model: str, seconds: float) -> None:
        """One upstream attempt took `seconds` to its first answer or failure."""

    def failed(self, provider: str, model: str, status: int | None, message: str) -> None:
        """An attempt failed (retryable or not)."""

    def fallback(self, provider: str, model: str) -> None:
        """The request moved on from this route after a retryable failure."""

    def breaker(self, provider: str, upstream_model: str, state: str) -> None:
        """A breaker's state after an outcome was recorded in it."""


class CountEvents:
    """Top-ups and NWC attempts by outcome; this base class ignores them."""

    def topup(self, outcome: str) -> None:
        """A top-up invoice was created, or reached a final status."""

    def nwc_attempt(self, outcome: str) -> None:
        """An automatic NWC top-up attempt ended."""
