"""GET /v1/data/endpoints (no auth) and the data calls under /v1/data (`/api/...`, `/x/...`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.pay402 import key_or_keyless, purchase_for
from farebox.api.requests import read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.data.listing import endpoints_payload
from farebox.pay402.types import Offer

MAX_DATA_BODY_BYTES = 64 * 1024


def routes(services: Services) -> list[Route]:
    limit = min(services.settings.max_body_bytes, MAX_DATA_BODY_BYTES)
    data = services.data

    async def list_endpoints(request: Request) -> Response:
        return JSONResponse(endpoints_payload(data.catalog))

    async def call(request: Request) -> Response:
        key = await key_or_keyless(services, request)
        raw = await read_body(request, limit) if request.method == "POST" else b""
        path = "/" + request.path_params["path"]
        checked = data.quote(request.method, path, request.query_params.multi_items(), raw)
        endpoint = checked.endpoint.public_path
        what = f"{request.method} {endpoint}"
        offer = Offer(endpoint, checked.price, what)
        async with await purchase_for(services, request, key, offer) as paid:
            result = await data.execute(checked, paid.buyer)
            result.headers.update(await paid.settled())
        return paid_response(result)

    return [
        Route("/v1/data/endpoints", list_endpoints, methods=["GET"]),
        Route("/v1/data/{path:path}", call, methods=["GET", "POST"]),
    ]
