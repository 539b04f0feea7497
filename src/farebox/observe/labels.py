"""Bounded label values: what a customer sends never becomes a new time series."""

from __future__ import annotations

from collections.abc import Iterable

NO_MODEL = "none"  # the request ran no model (an account call, a 401, a bad body...)
OTHER_MODEL = "other"  # a name that is not a catalog id (never passed through)
UNMATCHED_ROUTE = "unmatched"  # no route matched the path (a 404): the path itself is not used


class ModelLabels:
    """Catalog ids pass through; anything else collapses to OTHER_MODEL."""

    def __init__(self, known: Iterable[str]) -> None:
        self._known = frozenset(known)

    def __call__(self, model: str | None) -> str:
        if model is None:
            return NO_MODEL
        return model if model in self._known else OTHER_MODEL


def failure_reason(status: int | None, message: str) -> str:
    """An upstream failure as a few reasons: http_429, http_4xx, http_5xx, timeout, network."""
    if status:
        if status == 429:
            return "http_429"
        return "http_5xx" if status >= 500 else "http_4xx"
    if "timed out" in message or "within" in message or "sent nothing" in message:
        return "timeout"
    return "network"
