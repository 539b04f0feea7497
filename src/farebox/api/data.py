"""GET /v1/data/endpoints (no auth) and the data calls under /v1/data (`/api/...`, `/x/...`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.requests import bearer_key, read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.data.listing import endpoints_payload
from farebox.data.params import DataCall
from farebox.errors import Unauthorized
from farebox.money import format_usd

MAX_DATA_BODY_BYTES = 64 * 1024


def routes(services: Services) -> list[Route]:
    limit = min(services.settings.max_body_bytes, MAX_DATA_BODY_BYTES)
    data = services.data

    async def list_endpoints(request: Request) -> Response:
        return JSONResponse(endpoints_payload(data.catalog))

    async def call(request: Request) -> Response:
        raw_key = bearer_key(request)
        key = await services.keys.authenticate(raw_key) if raw_key else None
        raw = await read_body(request, limit) if request.method == "POST" else b""
        path = "/" + request.path_params["path"]
        checked = data.quote(request.method, path, request.query_params.multi_items(), raw)
        if key is None:
            return await keyless(request, checked)
        return paid_response(await data.call_with_key(key, checked))

    async def keyless(request: Request, checked: DataCall) -> Response:
        """A checked, priced call with no API key: where pay-per-request (HTTP 402) answers."""
        raise Unauthorized(
            f"Missing API key: send 'Authorization: Bearer sk-...'. This call costs "
            f"${format_usd(checked.price)}. Create an account and key with POST /accounts/create."
        )

    return [
        Route("/v1/data/endpoints", list_endpoints, methods=["GET"]),
        Route("/v1/data/{path:path}", call, methods=["GET", "POST"]),
    ]
