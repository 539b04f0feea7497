"""Every dashboard route: the customer's pages, the operator's console, the shipped assets."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.services import Services
from farebox.dashboard import (
    account_pages,
    activity_pages,
    console_pages,
    key_pages,
    model_pages,
    playground_pages,
    topup_pages,
)
from farebox.dashboard.web import SECURITY_HEADERS, Web


def routes(services: Services) -> list[Route]:
    web = Web(services)

    async def static(request: Request) -> Response:
        asset = web.assets.get(request.path_params["name"])
        if asset is None:
            return Response("Not found", 404, headers=SECURITY_HEADERS, media_type="text/plain")
        versioned = request.query_params.get("v") == asset.version
        return Response(
            asset.body,
            headers={
                **SECURITY_HEADERS,
                "content-type": asset.content_type,
                "cache-control": "public, max-age=31536000, immutable" if versioned else "no-cache",
                "etag": f'"{asset.version}"',
            },
        )

    return [
        *account_pages.routes(web),
        *key_pages.routes(web),
        *activity_pages.routes(web),
        *topup_pages.routes(web),
        *model_pages.routes(web),
        *playground_pages.routes(web),
        *console_pages.routes(web),
        Route("/dashboard/static/{name}", static, methods=["GET"]),
    ]
