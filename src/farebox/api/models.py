"""GET /v1/models (and /models): the catalog with prices, in OpenAI's list shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.catalog.listing import models_payload


def routes(services: Services) -> list[Route]:
    async def list_models(request: Request) -> Response:
        return JSONResponse(models_payload(services.catalog, request.query_params.get("type")))

    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
    ]
