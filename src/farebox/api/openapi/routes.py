"""GET /openapi.json and GET /docs, built once when the app is."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from farebox.api.openapi import page
from farebox.api.openapi.schema import build_schema
from farebox.api.services import Services


def routes(services: Services) -> list[Route]:
    doc = build_schema(server_url=services.settings.public_url or None)
    body = orjson.dumps(doc)
    html = page.render(doc)

    async def openapi(request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(html, headers=page.HEADERS)

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
