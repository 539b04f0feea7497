"""What one request did, filled in as it runs and read when it ends (the access line, metrics).

The request's Observation lives in a ContextVar set by the middleware (observe/middleware.py), so
code deep in a request (the router, a charge's settlement, the upstream HTTP clients) can note
the model, the cost and the upstream's time without every signature carrying it. Outside a
request (a background task, a test calling a service directly) there is none and the notes are
dropped.
"""

from __future__ import annotations

from contextvars import ContextVar


class Observation:
    """One request's figures. Slots only: one small object per request."""

    __slots__ = ("cost_nanos", "first", "model", "request_id", "status", "upstream_s")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.status = 500  # what uvicorn answers if the app fails before its response starts
        self.first: float | None = None  # time.perf_counter() when the response started
        self.model: str | None = None  # a catalog id (the router or settlement sets it)
        self.cost_nanos = 0  # what this request's settlements charged
        self.upstream_s = 0.0  # time spent waiting for upstreams' first answers


Record = tuple[str, str, str, int, str, int, float, float, float, float | None]
"""A finished request, as the request layer keeps it until the next flush (observe/finished.py):
request id, method, route template, status, model label, cost in nanodollars, seconds waiting
for upstreams, time.perf_counter() at its end, duration in seconds, seconds to its first byte
(None: no response started). Strings and numbers only: the cyclic collector stops tracking it."""

CURRENT: ContextVar[Observation | None] = ContextVar("farebox_observation", default=None)


def current() -> Observation | None:
    return CURRENT.get()


def note_model(model_id: str) -> None:
    """The catalog model this request runs (the first one noted wins)."""
    obs = CURRENT.get()
    if obs is not None and obs.model is None:
        obs.model = model_id


def note_settled(model_id: str | None, nanos: int) -> None:
    """A settlement of this request: what it charged (a request may settle more than once)."""
    obs = CURRENT.get()
    if obs is not None:
        obs.cost_nanos += nanos
        if model_id is not None and obs.model is None:
            obs.model = model_id


def note_upstream_wait(seconds: float) -> None:
    obs = CURRENT.get()
    if obs is not None:
        obs.upstream_s += seconds


def request_id_header() -> dict[str, str]:
    """The header that carries this request's id upstream ({} outside a request)."""
    obs = CURRENT.get()
    return {"X-Request-Id": obs.request_id} if obs is not None else {}
