"""The outermost layer of every HTTP request: its id, its metrics and its access line.

It wraps the whole gateway, the hot chat routes included (they skip Starlette's middleware
stack, see app.Gateway). Per request: a header scan, a ContextVar, one small object, one closure
and one tuple of figures; the metrics and the access lines are made from the tuples in batches
(observe/finished.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farebox.observe.access_log import AccessLog
from farebox.observe.context import CURRENT, Observation
from farebox.observe.finished import Finished
from farebox.observe.labels import UNMATCHED_ROUTE, ModelLabels
from farebox.observe.metrics import Metrics
from farebox.observe.request_id import RequestIds, accepted


def route_template(scope: Scope, hot: frozenset[str]) -> str:
    """The route's path template (`/keys/{key_id}`), never the requested path itself."""
    route: Any = scope.get("route")
    if route is not None:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    if scope["path"] in hot:
        return str(scope["path"])
    return UNMATCHED_ROUTE


class Observed:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None,
        access_log: AccessLog | None,
        hot_paths: Iterable[str] = (),
        model_label: ModelLabels | None = None,
    ) -> None:
        self.app = app
        if model_label is None:
            model_label = metrics.model_label if metrics is not None else ModelLabels(())
        self.model_label = model_label
        self.hot = frozenset(hot_paths)
        self.ids = RequestIds()
        self.finished = Finished(metrics, access_log)
        # Nothing to count or log: no record kept (the request ids still go out).
        self._keep = metrics is not None or access_log is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = accepted(value)
                break
        if request_id is None:
            request_id = self.ids.next()
        obs = Observation(request_id)
        token = CURRENT.set(obs)
        header = (b"x-request-id", request_id.encode())

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                obs.status = message["status"]
                obs.first = perf_counter()
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            CURRENT.reset(token)
            if self._keep:
                ended = perf_counter()
                first = obs.first
                self.finished.add(
                    (
                        request_id,
                        scope["method"],
                        route_template(scope, self.hot),
                        obs.status,
                        self.model_label(obs.model),
                        obs.cost_nanos,
                        obs.upstream_s,
                        ended,
                        ended - started,
                        first - started if first is not None else None,
                    )
                )
