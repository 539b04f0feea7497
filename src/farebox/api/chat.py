"""POST /v1/chat/completions and POST /chat/completions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import read_body, require_key
from farebox.api.services import Services
from farebox.api.streaming import EventStreamResponse
from farebox.money import format_usd

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes

    async def chat_completions(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        raw = await read_body(request, limit)
        result = await services.chat.complete(key, raw)
        headers = {"x-farebox-request-id": result.request_id}
        if result.stream is not None:
            return EventStreamResponse(result.stream, {**SSE_HEADERS, **headers})  # type: ignore[return-value]
        assert result.body is not None and result.cost_nanos is not None
        headers["x-farebox-cost"] = format_usd(result.cost_nanos)
        return Response(result.body, media_type="application/json", headers=headers)

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
    ]
