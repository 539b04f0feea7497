"""The operator's bearer token, checked the same way on every admin endpoint."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from farebox.errors import Forbidden, Unauthorized


def require_admin(request: Request, token: str | None) -> None:
    if not token:
        raise Forbidden("The admin API is off: set FAREBOX_ADMIN_TOKEN to turn it on.")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    # Compare bytes: compare_digest refuses non-ASCII str, and a header may carry any byte
    # (Starlette decodes headers as latin-1, so this gives back the bytes that were sent).
    given = value.strip().encode("latin-1")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, token.encode()):
        raise Unauthorized(
            "Invalid admin token: send 'Authorization: Bearer <FAREBOX_ADMIN_TOKEN>'."
        )
