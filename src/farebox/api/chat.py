"""POST /v1/chat/completions and POST /chat/completions.

The hot path, so a bare ASGI endpoint: no Request/Response objects, headers read straight from
the scope, the body read with its size limit enforced as it arrives. Errors are raised as domain
errors and mapped by the app's handlers like everywhere else.
"""

from __future__ import annotations

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from farebox.api.paid_chat import keyless_chat
from farebox.api.services import Services
from farebox.api.streaming import EventStreamResponse
from farebox.errors import PayloadTooLarge, Unauthorized
from farebox.inputs import content_length
from farebox.money import format_usd

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_MISSING_KEY = (
    "Missing API key: send 'Authorization: Bearer sk-...' or an 'api-key' header. "
    "Create an account and key with POST /accounts/create."
)


class ClientGone(Exception):
    """The client disconnected before its request body arrived: nothing to answer."""


def api_key_from_headers(headers: list[tuple[bytes, bytes]]) -> str:
    """`Authorization: Bearer sk-...`, or an `api-key` / `x-api-key` header (PPQ accepts both)."""
    fallback = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name in (b"api-key", b"x-api-key") and value.strip():
            fallback = value.decode("latin-1").strip()
    if fallback is None:
        raise Unauthorized(_MISSING_KEY)
    return fallback


async def read_limited(receive: Receive, limit: int, declared: int | None) -> bytes:
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ChatEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.limit = services.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        declared = next(
            (content_length(v.decode("latin-1")) for k, v in headers if k == b"content-length"),
            None,
        )
        try:
            raw_key = api_key_from_headers(headers)
        except Unauthorized:
            if not self.services.pay402.enabled:
                raise
            raw_key = None  # no key: paid per request (api/paid_chat.py)
        key = await self.services.keys.authenticate(raw_key) if raw_key is not None else None
        try:
            raw = await read_limited(receive, self.limit, declared)
        except ClientGone:
            return
        if key is None:
            await keyless_chat(self.services, raw, scope, receive, send)
            return
        result = await self.services.chat.complete(key, raw)
        extra = {"x-farebox-request-id": result.request_id}
        if result.stream is not None:
            await EventStreamResponse(result.stream, {**SSE_HEADERS, **extra})(scope, receive, send)
            return
        assert result.body is not None and result.cost_nanos is not None
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(result.body)).encode()),
                    (b"x-farebox-request-id", result.request_id.encode()),
                    (b"x-farebox-cost", format_usd(result.cost_nanos).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": result.body})


PATHS = ("/v1/chat/completions", "/chat/completions")


def routes(services: Services) -> list[Route]:
    endpoint = ChatEndpoint(services)
    return [Route(path, endpoint, methods=["POST"]) for path in PATHS]
