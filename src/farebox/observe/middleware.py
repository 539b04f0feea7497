"""The outermost layer of every HTTP request: its id, its metrics and its access line.

It wraps the whole gateway, the hot chat routes included (they skip Starlette's middleware
stack, see app.Gateway). Per request: a header scan, a ContextVar, one small object and one
closure; the metric children are bound once per label set (observe/metrics.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farebox.observe.access_log import AccessLog
from farebox.observe.context import CURRENT, Observation
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
        self.metrics = metrics
        if model_label is None:
            model_label = metrics.model_label if metrics is not None else ModelLabels(())
        self.model_label = model_label
        self.access_log = access_log
        self.hot = frozenset(hot_paths)
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
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
        status = 500  # what uvicorn answers if the app fails before its response starts
        first: float | None = None

        async def sending(message: Message) -> None:
            nonlocal status, first
            if message["type"] == "http.response.start":
                status = message["status"]
                first = time.perf_counter()
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            CURRENT.reset(token)
            ended = time.perf_counter()
            route = route_template(scope, self.hot)
            ttfb = first - started if first is not None else None
            if self.metrics is not None:
                self.metrics.request_done(
                    route, status, obs.model, ttfb, ended - started, obs.upstream_s
                )
            if self.access_log is not None:
                self.access_log.write(
                    request_id,
                    scope["method"],
                    route,
                    status,
                    self.model_label(obs.model),
                    obs.cost_nanos,
                    ended - started,
                    ttfb,
                    obs.upstream_s,
                )
