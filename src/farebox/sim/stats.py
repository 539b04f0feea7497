"""Request counters, per URL prefix and per endpoint, served at `GET /sim/stats`."""

from __future__ import annotations


class SimStats:
    """Counts the API requests a simulator has seen since it started or was last reset.

    The per-prefix count also drives `fail_first` (the first n requests under a prefix fail).
    Requests without a `/sim/...` prefix count under the prefix "".
    """

    __slots__ = ("_by_endpoint", "_by_prefix", "_total")

    def __init__(self) -> None:
        self._total = 0
        self._by_prefix: dict[str, int] = {}
        self._by_endpoint: dict[str, int] = {}

    def record(self, prefix: str, endpoint: str) -> int:
        """Count one request; returns how many requests this prefix has now seen."""
        self._total += 1
        seen = self._by_prefix.get(prefix, 0) + 1
        self._by_prefix[prefix] = seen
        self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1
        return seen

    def snapshot(self) -> dict[str, object]:
        """`{"requests": total, "by_prefix": {...}, "by_endpoint": {...}}`."""
        return {
            "requests": self._total,
            "by_prefix": dict(self._by_prefix),
            "by_endpoint": dict(self._by_endpoint),
        }

    def reset(self) -> None:
        """Forget every count (and so every `fail_first` progress)."""
        self._total = 0
        self._by_prefix.clear()
        self._by_endpoint.clear()
