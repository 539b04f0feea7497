"""Wiring observability into a built gateway: the metrics, the events the services report, the
settle listener that counts revenue, the /metrics route and the request middleware."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.routing import Route
from starlette.types import ASGIApp

from farebox.api.services import Services
from farebox.ledger.types import Settlement
from farebox.money import per_million_cost
from farebox.observe.access_log import AccessLog
from farebox.observe.config import ObserveConfig
from farebox.observe.endpoint import metrics_route
from farebox.observe.events import MetricCountEvents, MetricRouteEvents
from farebox.observe.metrics import FLUSH_S, Metrics
from farebox.observe.middleware import Observed
from farebox.observe.multiproc import active_dir, forget_on_exit
from farebox.periodic import Periodic


class Observability:
    def __init__(self, services: Services, config: ObserveConfig | None = None) -> None:
        self.services = services
        self.config = config or ObserveConfig.from_env(services.settings.extra_env)
        self.access_log = AccessLog(self.config.log_format) if self.config.access_log else None
        models = [*services.catalog.models, *_data_ids(services)]
        directory = active_dir()
        self.metrics = Metrics(models, directory)
        self._flusher: Periodic | None = None
        self._layer: Observed | None = None
        if not self.config.metrics:
            return  # nothing counted (the request ids and access lines may still be on)
        if directory is not None:
            forget_on_exit(directory)
        services.router.events = MetricRouteEvents(self.metrics)
        counts = MetricCountEvents(self.metrics)
        services.topups.events = counts
        services.nwc.events = counts
        services.ledger.add_settle_listener(self.on_settled)
        self._flusher = Periodic("farebox-metrics-flush", FLUSH_S, self._flush)

    async def _flush(self) -> None:
        self.metrics.flush()

    def start(self) -> None:
        """In the serving loop: move the requests' counts into the values every FLUSH_S."""
        if self._flusher is not None:
            self._flusher.start()

    async def stop(self) -> None:
        if self._flusher is not None:
            await self._flusher.stop()

    def on_settled(self, settlements: Sequence[Settlement]) -> None:
        """Revenue and upstream cost of each committed settlement, by model."""
        catalog = self.services.catalog.models
        for s in settlements:
            query = s.query
            model_id = query.model if query is not None else None
            cost = None
            model = catalog.get(model_id) if model_id is not None else None
            if query is not None and model is not None and model.cost and not model.unit_prices:
                cost = per_million_cost(query.input_count, model.cost.input)
                cost += per_million_cost(query.output_count, model.cost.output)
            self.metrics.settled(model_id, s.actual, cost)

    def routes(self) -> list[Route]:
        settings = self.services.settings
        if not self.config.metrics:
            return []
        return [
            metrics_route(
                self.metrics, self.services.db, settings.admin_token, self.config.metrics_public
            )
        ]

    def close(self) -> None:
        """At shutdown: the last counts, and the access lines still gathered."""
        if self._layer is not None:
            self._layer.finished.flush()
        self.metrics.flush()

    def middleware(self, app: ASGIApp, hot_paths: Iterable[str]) -> ASGIApp:
        """The request layer; with metrics and access lines both off, none at all (no
        X-Request-Id either): the gateway as it was before this layer, for benchmarks."""
        log = self.access_log
        if log is None and not self.config.metrics:
            return app
        counting = self.metrics if self.config.metrics else None
        self._layer = Observed(app, counting, log, hot_paths, self.metrics.model_label)
        return self._layer


def _data_ids(services: Services) -> list[str]:
    catalog = getattr(services.data, "catalog", None)
    endpoints = getattr(catalog, "endpoints", None)
    return list(endpoints) if endpoints is not None else []
