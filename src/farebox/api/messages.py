"""Anthropic's surface: POST /v1/messages (also `?beta=true`) and /v1/messages/count_tokens.

Auth by `x-api-key` or `Authorization: Bearer`; errors in Anthropic's envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from farebox.anthropic.errors import anthropic_error_body
from farebox.anthropic.service import MessagesService
from farebox.api.paid_chat import keyless_messages
from farebox.api.requests import bearer_key, read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.errors import FareboxError, Unauthorized
from farebox.keys.store import ApiKey
from farebox.money import format_usd

log = logging.getLogger("farebox.api")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Handler = Callable[[Request], Awaitable[Response]]


def anthropic_errors(handler: Handler) -> Handler:
    """Domain errors (and anything unexpected) as Anthropic's error envelope."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except FareboxError as exc:
            headers = {"retry-after": str(exc.retry_after_s)} if exc.status in (429, 503) else None
            response = JSONResponse(
                anthropic_error_body(exc), status_code=exc.status, headers=headers
            )
            for name, value in getattr(exc, "headers", ()):  # a 402's challenges, Cashu change
                response.headers.append(name, value)
            return response
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            err = FareboxError("Internal error. Nothing was charged for this request.")
            err.status = 500
            return JSONResponse(anthropic_error_body(err), status_code=500)

    return wrapped


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes
    messages = MessagesService(services.catalog, services.chat)

    async def authenticate(request: Request) -> ApiKey:
        key = bearer_key(request)
        if not key:
            raise Unauthorized(
                "Missing API key: send it as 'x-api-key: sk-...' or 'Authorization: Bearer "
                "sk-...' (ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN for Claude Code). Create an "
                "account and key with POST /accounts/create."
            )
        return await services.keys.authenticate(key)

    @anthropic_errors
    async def create(request: Request) -> Response:
        if not bearer_key(request) and services.pay402.enabled:
            return await keyless_messages(
                services, messages, request, await read_body(request, limit)
            )
        key = await authenticate(request)
        raw = await read_body(request, limit)
        result = await messages.create(key, raw, request.headers, request.url.query)
        headers = {"x-farebox-request-id": result.request_id, "request-id": result.request_id}
        if result.stream is not None:
            return StreamingResponse(
                result.stream, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
            )
        assert result.body is not None and result.cost_nanos is not None
        headers["x-farebox-cost"] = format_usd(result.cost_nanos)
        return Response(result.body, media_type="application/json", headers=headers)

    @anthropic_errors
    async def count_tokens(request: Request) -> Response:
        await authenticate(request)
        raw = await read_body(request, limit)
        return JSONResponse(messages.count_tokens(raw))

    return [
        Route("/v1/messages", create, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    ]
