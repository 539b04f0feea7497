"""Private models (EHBP): the blind relay and what an EHBP client fetches through the gateway.

    POST /private/v1/chat/completions  sealed body; Authorization (or api-key) and
                                       X-Private-Model in clear
    GET  /private/v1/preflight         the hold a request would take, in plaintext (402 if not)
    GET  /private/attestation          the enclave's attestation bundle, unchanged
    GET  /.well-known/hpke-keys        its HPKE key config (also under /private/)

`?model=private/<id>` picks the enclave of that model; without it, the first private model's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from farebox.api.chat import ClientGone, api_key_from_headers, read_limited
from farebox.api.requests import require_key
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.streaming import EventStreamResponse
from farebox.errors import InvalidRequest, NotFound
from farebox.inputs import ascii_whole_number, content_length
from farebox.private.ehbp import ENCAPSULATED_KEY_HEADER, KEYS_PATH
from farebox.private.enclaves import Enclave
from farebox.private.relay import PrivateRelay
from farebox.private.usage import PRIVATE_MODEL_HEADER

BODY_BYTES_HEADER = "x-private-body-bytes"


def _header(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.lower().encode("latin-1")
    for key, value in headers:
        if key == wanted:
            return value.decode("latin-1")
    return None


class RelayEndpoint:
    """`POST /private/v1/chat/completions`: a bare ASGI endpoint, so the sealed answer streams
    through as it arrives and a client leaving stops the relay (and settles) at once."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.relay = services.private
        self.limit = services.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        key = await self.services.keys.authenticate(api_key_from_headers(headers))
        model_header = _header(headers, PRIVATE_MODEL_HEADER)
        self.relay.route(model_header)  # an unknown or public model is refused before the body
        declared = content_length(_header(headers, "content-length"))
        try:
            body = await read_limited(receive, self.limit, declared)
        except ClientGone:
            return
        reply = await self.relay.relay(
            key,
            model_header,
            _header(headers, ENCAPSULATED_KEY_HEADER),
            _header(headers, "content-type"),
            body,
        )
        response = EventStreamResponse(
            reply.body, reply.headers, reply.status, media_type=None, last_event=None
        )
        await response(scope, receive, send)


def _enclave(relay: PrivateRelay, request: Request) -> Enclave:
    model = request.query_params.get("model")
    if model:
        if len(model) > 200:
            raise InvalidRequest("model is too long", param="model")
        return relay.route(model)[1]
    enclave = relay.enclaves.default()
    if enclave is None:
        raise NotFound("This gateway serves no private models.")
    return enclave


def routes(services: Services) -> list[Route]:
    relay = services.private

    async def attestation(request: Request) -> Response:
        document = await _enclave(relay, request).bundle(relay.enclaves.session)
        return Response(
            document.body,
            media_type=document.content_type,
            headers={"cache-control": "public, max-age=60"},
        )

    async def hpke_keys(request: Request) -> Response:
        document = await _enclave(relay, request).keys(relay.enclaves.session)
        return Response(
            document.body,
            media_type=document.content_type,
            headers={"cache-control": "public, max-age=60"},
        )

    async def preflight(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        size = ascii_whole_number(request.headers.get(BODY_BYTES_HEADER, "0"), 12)
        if size is None:  # isdigit() accepts "²", which int() refuses
            raise InvalidRequest(
                f"{BODY_BYTES_HEADER} must be the sealed body's size in bytes",
                param=BODY_BYTES_HEADER,
            )
        if size > services.settings.max_body_bytes:
            raise InvalidRequest(
                f"A sealed body of {size} bytes is over the {services.settings.max_body_bytes} "
                "byte limit.",
                param=BODY_BYTES_HEADER,
            )
        return JSONResponse(
            await relay.preflight(key, request.headers.get(PRIVATE_MODEL_HEADER), size)
        )

    return [
        Route("/private/v1/chat/completions", RelayEndpoint(services), methods=["POST"]),
        Route("/private/v1/preflight", preflight, methods=["GET"]),
        Route("/private/attestation", attestation, methods=["GET"]),
        Route(KEYS_PATH, hpke_keys, methods=["GET"]),
        Route("/private" + KEYS_PATH, hpke_keys, methods=["GET"]),
    ]
