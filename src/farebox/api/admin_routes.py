"""GET /admin/routes (Bearer FAREBOX_ADMIN_TOKEN): every chat route's health, from its breaker."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin_auth import require_admin
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.providers.route_report import route_rows


def routes(services: Services) -> list[Route]:
    token = services.settings.admin_token

    async def route_health(request: Request) -> Response:
        require_admin(request, token)
        rows = route_rows(services.catalog, services.router)
        return JSONResponse({"data": rows, "summary": services.router.health.summary()})

    return [Route("/admin/routes", route_health, methods=["GET"])]
