"""GET /metrics: the Prometheus text format, behind the admin token unless the operator opens it
(FAREBOX_METRICS_PUBLIC=true)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin_auth import require_admin
from farebox.db.database import Database
from farebox.errors import Forbidden
from farebox.observe.db_figures import DbFigures, exposition, read_figures
from farebox.observe.metrics import Metrics

log = logging.getLogger("farebox.observe")


def metrics_route(metrics: Metrics, db: Database, admin_token: str | None, public: bool) -> Route:
    async def scrape(request: Request) -> Response:
        if not public:
            try:
                require_admin(request, admin_token)
            except Forbidden as exc:
                raise Forbidden(
                    "GET /metrics needs the admin token, and the admin API is off: set "
                    "FAREBOX_ADMIN_TOKEN, or FAREBOX_METRICS_PUBLIC=true to open it."
                ) from exc
        figures: DbFigures | None
        try:
            figures = await db.read(read_figures, time.time())
        except Exception:  # the process's own series are still worth a scrape
            log.warning("metrics: the database did not answer", exc_info=True)
            figures = None
        metrics.flush()  # this process' latest counts (other workers flush every FLUSH_S)
        body = generate_latest(metrics.registry) + exposition(figures)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])
