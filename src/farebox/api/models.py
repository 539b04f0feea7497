"""GET /v1/models (and /models): the catalog with prices, in OpenAI's list shape; and
GET /v1/models/{id}, one model (what `client.models.retrieve` asks for)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.catalog.listing import model_entry, models_payload


def routes(services: Services) -> list[Route]:
    async def list_models(request: Request) -> Response:
        return JSONResponse(models_payload(services.catalog, request.query_params.get("type")))

    async def retrieve_model(request: Request) -> Response:
        # Ids may hold slashes (openai/text-embedding-3-small); an alias or a dated id answers
        # with the model it names, under its catalog id.
        return JSONResponse(model_entry(services.catalog.resolve(request.path_params["model_id"])))

    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
        Route("/models/{model_id:path}", retrieve_model, methods=["GET"]),
    ]
