"""GET /admin/routes (Bearer FAREBOX_ADMIN_TOKEN): every chat route's health, from its breaker."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin_auth import require_admin
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.providers.breaker import CLOSED


def routes(services: Services) -> list[Route]:
    token = services.settings.admin_token

    async def route_health(request: Request) -> Response:
        require_admin(request, token)
        health = services.router.health
        now = health.clock()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for model in services.catalog.list("chat"):
            for route in model.routes:
                key = (route.provider, route.upstream_model)
                if key not in rows:
                    breaker = health.breakers.get(key)
                    rows[key] = (
                        breaker.snapshot(now)
                        if breaker is not None
                        else {
                            "provider": route.provider,
                            "upstream_model": route.upstream_model,
                            "state": CLOSED,
                            "consecutive_failures": 0,
                            "failures": 0,
                            "successes": 0,
                            "retry_in_s": None,
                            "last_error": None,
                        }
                    )
                    rows[key]["configured"] = route.provider in services.router.providers
                    rows[key]["models"] = []
                rows[key]["models"].append(model.id)
        return JSONResponse({"data": list(rows.values()), "summary": health.summary()})

    return [Route("/admin/routes", route_health, methods=["GET"])]
