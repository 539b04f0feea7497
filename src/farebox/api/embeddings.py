"""POST /v1/embeddings and POST /embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.requests import read_body, require_key
from farebox.api.services import Services


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes

    async def embeddings(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        raw = await read_body(request, limit)
        return paid_response(await services.media.embeddings.embed(key, raw))

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
    ]
