"""Pieces every OpenAI-format endpoint shares: bearer auth, the error envelope, JSON bodies."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from farebox.sim.config import SimConfig
from farebox.sim.gate import Failure

JSON_HEADERS = {"Content-Type": "application/json"}

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    503: ("server_error", "service_unavailable"),
}


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> bytes:
    """OpenAI's `{"error": {"message", "type", "param", "code"}}` for an HTTP status."""
    kind, default_code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    error = {"message": message, "type": kind, "param": param, "code": code or default_code}
    return orjson.dumps({"error": error})


def error_response(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> web.Response:
    """An OpenAI-style error reply; a 429 also says `retry-after: 1`."""
    headers = {**JSON_HEADERS, "retry-after": "1"} if status == 429 else JSON_HEADERS
    return web.Response(
        status=status, body=error_body(status, message, code, param), headers=headers
    )


def failure_response(failure: Failure) -> web.Response:
    """The reply for a simulated failure."""
    return error_response(failure.status, failure.message, failure.code)


def json_response(payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A 200 JSON reply serialised with orjson."""
    return web.Response(
        body=orjson.dumps(payload),
        headers=JSON_HEADERS if headers is None else {**JSON_HEADERS, **headers},
    )


def check_auth(request: web.Request, config: SimConfig) -> web.Response | None:
    """None if the request carries an acceptable bearer key, else the 401 to answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return error_response(
            401,
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
        )
    if config.api_key is not None and key != config.api_key:
        return error_response(401, "Incorrect API key provided to the simulator.")
    return None


async def read_json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The request body as a JSON object, or the 400 to answer."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error_response(
            400, "We could not parse the JSON body of your request. Send a JSON object."
        )
    if not isinstance(body, dict):
        return error_response(400, "The request body must be a JSON object.")
    return body
