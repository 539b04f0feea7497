"""`farebox private-proxy`: the OpenAI-compatible proxy a user runs beside their app.

    app --(plaintext, loopback)--> private-proxy --(sealed, EHBP)--> gateway --> enclave

It verifies the enclave (farebox.private.attester) before sending anything, maps `private/<id>`
to the enclave's `<id>`, seals each request to the attested key, asks the gateway in plaintext
whether it would take the request (so a refusal has a readable reason), and opens the sealed
answer, streaming or not. A 2xx answer without a response nonce is refused (it could be a
substitute); a non-2xx one without it is the gateway's own plaintext error, passed on as such.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from farebox.api.requests import read_body
from farebox.api.responses import JSONResponse, error_response
from farebox.errors import FareboxError, InvalidRequest, UpstreamError, UpstreamUnavailable
from farebox.inputs import parse_json_object
from farebox.private.attestation import AttestationError
from farebox.private.attester import Attester
from farebox.private.ehbp import (
    ENCAPSULATED_KEY_HEADER,
    KEY_CONFIG_PROBLEM,
    PROBLEM_JSON,
    RESPONSE_NONCE_HEADER,
    EhbpError,
)
from farebox.private.ehbp_seal import SealedRequest, seal_request
from farebox.private.policy import Policy
from farebox.private.usage import PRIVATE_MODEL_HEADER

log = logging.getLogger("farebox.private_proxy")

PRIVATE_PREFIX = "private/"
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
UNAUTHENTICATED_HEADER = "x-private-proxy-unauthenticated"


class AttestationFailed(UpstreamUnavailable):
    code = "attestation_failed"


class _Answer:
    """A sealed answer from the gateway and the means to open it."""

    def __init__(self, response: aiohttp.ClientResponse, sealed: SealedRequest) -> None:
        self.response = response
        self.sealed = sealed


class PrivateProxy:
    def __init__(self, gateway_url: str, api_key: str, policy: Policy) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.api_key = api_key
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None
        self.attester: Attester | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            auto_decompress=False,
            trust_env=True,
        )
        self.attester = Attester(self.gateway_url, self.policy, self._session)
        try:
            verified = await self.attester.verify()
        except AttestationError as exc:
            log.error("enclave NOT verified, nothing will be sent: %s", exc)
            return
        log.warning(
            "enclave verified: measurement %s, attestation %s, HPKE key %s",
            verified.measurement[:16],
            verified.fingerprint[:16],
            verified.key_config.public_key.hex()[:16],
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "start() first"
        return self._session

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def _verified(self, refresh: bool = False) -> Any:
        assert self.attester is not None
        try:
            return await (self.attester.verify() if refresh else self.attester.ready())
        except AttestationError as exc:
            raise AttestationFailed(
                f"The enclave could not be verified, so nothing was sent: {exc}."
            ) from exc

    async def models(self) -> dict[str, Any]:
        async with self.session.get(self.gateway_url + "/v1/models?type=chat") as r:
            data = await r.json(content_type=None) if r.status == 200 else {"data": []}
        listed = [m for m in data.get("data", []) if isinstance(m, dict) and m.get("private")]
        return {"object": "list", "data": listed}

    async def _preflight(self, model: str, sealed: SealedRequest) -> Response | None:
        """The gateway's plaintext answer to "would you take this?", or None for yes."""
        headers = {
            **self._auth(),
            PRIVATE_MODEL_HEADER: model,
            "X-Private-Body-Bytes": str(len(sealed.body)),
        }
        async with self.session.get(
            self.gateway_url + "/private/v1/preflight", headers=headers
        ) as r:
            if r.status == 200:
                return None
            body = await r.content.read(MAX_RESPONSE_BYTES)
            return Response(body, status_code=r.status, media_type="application/json")

    async def _send(self, model: str, plaintext: bytes) -> _Answer | Response:
        enclave = await self._verified()
        for attempt in range(2):
            sealed = seal_request(enclave.key_config, plaintext)
            refused = await self._preflight(model, sealed)
            if refused is not None:
                return refused
            headers = {
                **self._auth(),
                PRIVATE_MODEL_HEADER: model,
                ENCAPSULATED_KEY_HEADER: sealed.enc_hex,
                "Content-Type": "application/json",
            }
            response = await self.session.post(
                self.gateway_url + "/private/v1/chat/completions", data=sealed.body, headers=headers
            )
            if attempt == 0 and await _is_key_mismatch(response):
                response.release()
                enclave = await self._verified(refresh=True)  # a rotated key: attest again
                continue
            return _Answer(response, sealed)
        raise AssertionError("unreachable")

    async def chat(self, request: Request) -> Response:
        body = parse_json_object(await read_body(request, MAX_REQUEST_BYTES))
        model = body.get("model")
        if not isinstance(model, str) or not model.startswith(PRIVATE_PREFIX):
            raise InvalidRequest(
                "This proxy serves private models only: use a model id starting with "
                "'private/' (GET /v1/models lists them).",
                param="model",
            )
        body["model"] = model[len(PRIVATE_PREFIX) :]
        answer = await self._send(model, orjson.dumps(body))
        if isinstance(answer, Response):
            return answer
        return await _open(answer)


async def _is_key_mismatch(response: aiohttp.ClientResponse) -> bool:
    if response.status != 422:
        return False
    media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media != PROBLEM_JSON:
        return False
    try:
        problem = orjson.loads(await response.content.read(64 * 1024))
    except orjson.JSONDecodeError:
        return False
    return isinstance(problem, dict) and problem.get("type") == KEY_CONFIG_PROBLEM


async def _open(answer: _Answer) -> Response:
    response = answer.response
    nonce = response.headers.get(RESPONSE_NONCE_HEADER)
    if nonce is None:
        body = await response.content.read(MAX_RESPONSE_BYTES)
        response.release()
        if 200 <= response.status < 300:
            raise UpstreamError(
                "The gateway answered without EHBP encryption; the answer was refused "
                "(it could have been substituted)."
            )
        # The gateway's own refusal: readable, but not authenticated by the enclave.
        media = response.headers.get("Content-Type", "application/json")
        return Response(
            body,
            status_code=response.status,
            media_type=media,
            headers={UNAUTHENTICATED_HEADER: "true"},
        )
    try:
        opener = answer.sealed.opener(nonce)
    except EhbpError as exc:
        response.release()
        raise UpstreamError(f"The enclave's answer is malformed ({exc}).") from exc
    media = response.headers.get("Content-Type", "application/json")
    if media.split(";", 1)[0].strip().lower() == "text/event-stream":
        return StreamingResponse(
            _opened(response, opener), status_code=response.status, media_type=media
        )
    sealed_body = await response.content.read(MAX_RESPONSE_BYTES)
    response.release()
    try:
        plaintext = opener.feed(sealed_body)
        opener.finish()
    except EhbpError as exc:
        raise UpstreamError(f"The enclave's answer failed authentication ({exc}).") from exc
    cost = response.headers.get("x-farebox-cost")
    if cost is not None:
        plaintext = _with_cost(plaintext, cost)
    headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-farebox-")}
    return Response(plaintext, status_code=response.status, media_type=media, headers=headers)


async def _opened(response: aiohttp.ClientResponse, opener: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            plaintext = opener.feed(chunk)
            if plaintext:
                yield plaintext
        opener.finish()
    except EhbpError as exc:
        log.error("a sealed stream failed authentication; it is cut here: %s", exc)
        raise
    except aiohttp.ClientError as exc:
        log.warning("the gateway's stream broke off; it is cut here too: %r", exc)
        raise
    finally:
        response.release()


def _with_cost(plaintext: bytes, cost: str) -> bytes:
    """`usage.cost` (USD, as the gateway charged it) in a whole JSON answer."""
    try:
        data = orjson.loads(plaintext)
    except orjson.JSONDecodeError:
        return plaintext
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict):
        usage["cost"] = float(cost)
        return orjson.dumps(data)
    return plaintext


def create_proxy_app(proxy: PrivateProxy) -> Starlette:
    async def health(request: Request) -> Response:
        assert proxy.attester is not None
        status = proxy.attester.status()
        return JSONResponse({"status": "ok" if status["attested"] else "unverified", **status})

    async def models(request: Request) -> Response:
        return JSONResponse(await proxy.models())

    async def chat(request: Request) -> Response:
        return await proxy.chat(request)

    async def farebox_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FareboxError)
        return error_response(exc)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        try:
            yield
        finally:
            await proxy.stop()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/chat/completions", chat, methods=["POST"]),
        ],
        lifespan=lifespan,
        exception_handlers={FareboxError: farebox_error},
    )
