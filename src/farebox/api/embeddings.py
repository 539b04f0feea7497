"""POST /v1/embeddings and POST /embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.requests import read_json, require_key
from farebox.api.services import Services
from farebox.api.wire.media import EmbeddingsRequest
from farebox.api.wire.validate import validate


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes

    async def embeddings(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        body = validate(EmbeddingsRequest, await read_json(request, limit))
        return paid_response(await services.media.embeddings.embed(key, body.ask()))

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
    ]
