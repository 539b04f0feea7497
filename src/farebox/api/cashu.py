"""GET /v1/cashu/change/{id}: a Cashu payer's change, fetched again (no API key: the id, random
and given only with the paid response, is the claim; the token itself is bearer money, so the
answer is `Cache-Control: no-store`).

200 with the change token once the request has settled (also in `X-Cashu`), 202 while a request
still holds money on it (a stream, a video job), 404 for an unknown id, 410 after
FAREBOX_CASHU_CHANGE_KEEP_S (24 h by default)."""

from __future__ import annotations

import re
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.errors import FareboxError, NotFound

_ID = re.compile(r"[0-9a-f]{32}")
NO_STORE = {"cache-control": "no-store"}


class ChangeExpired(FareboxError):
    status = 410
    code = "cashu_change_expired"


def routes(services: Services) -> list[Route]:
    cashu = services.cashu

    async def change(request: Request) -> Response:
        receipt_id = request.path_params["receipt_id"]
        receipt = await cashu.find(receipt_id) if _ID.fullmatch(receipt_id) else None
        if receipt is None:
            raise NotFound("No Cashu payment has this change id.")
        if receipt.change_until is not None and time.time() > receipt.change_until:
            raise ChangeExpired("This change id has expired: change is kept for a limited time.")
        found = await cashu.change(receipt_id)
        if not found.ready:
            return JSONResponse(
                {"id": receipt_id, "status": "pending"},
                status_code=202,
                headers={**NO_STORE, "retry-after": "1"},
            )
        headers = dict(NO_STORE)
        if found.token:
            headers["x-cashu"] = found.token
        body = {
            "id": receipt_id,
            "status": "ready",
            "token": found.token,
            "sats": found.sats,
            "unit": receipt.unit,
            "mint": receipt.mint_url,
            "expires_at": int(found.until or 0),
        }
        return JSONResponse(body, headers=headers)

    return [Route("/v1/cashu/change/{receipt_id}", change, methods=["GET"])]
