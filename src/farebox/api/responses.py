"""JSON responses (orjson) and OpenAI's error envelope."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from farebox.errors import FareboxError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(exc: FareboxError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error": {
            "message": exc.message,
            "type": exc.type,
            "param": exc.param,
            "code": exc.code,
        }
    }
    if exc.extra:
        body["error"].update(exc.extra)
        body.update(exc.extra)  # 402 bodies also say balance, reserved, available at the top
    return body


def error_response(exc: FareboxError) -> JSONResponse:
    headers = {"retry-after": str(exc.retry_after_s)} if exc.status in (429, 503) else None
    response = JSONResponse(error_body(exc), status_code=exc.status, headers=headers)
    for name, value in getattr(exc, "headers", ()):  # e.g. a 402's WWW-Authenticate challenges
        response.headers.append(name, value)
    return response
