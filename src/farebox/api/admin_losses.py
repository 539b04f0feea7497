"""GET /admin/losses (Bearer FAREBOX_ADMIN_TOKEN): the operator's losses, summed and listed.

A loss is a request whose upstream reported usage worth more than the customer could be charged
(see billing/losses.py). `?days=N` limits the report to the last N days, `?limit=N` (1-1000,
default 100) the rows listed, newest first; `?account_id=` (or `?credit_id=`) one account's rows.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin import account_filter
from farebox.api.admin_auth import require_admin
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.payments import LossesQuery
from farebox.api.wire.validate import validate
from farebox.money import nanos_to_usd

_SECONDS_PER_DAY = 86_400


def _usd(nanos: int | None) -> float | None:
    return None if nanos is None else nanos_to_usd(int(nanos))


def loss_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": row["request_id"],
        "created_at": row["created_at"],
        "account_id": row["account_id"],
        "key_id": row["key_id"],
        "model": row["model"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "usage_value_usd": _usd(row["sale_value"]),
        "charged_usd": _usd(row["charged"]),
        "unbilled_usd": _usd(row["unbilled"]),
        "upstream_cost_usd": _usd(row["upstream_cost"]),
        "unbilled_upstream_cost_usd": _usd(row["unbilled_cost"]),
    }


def routes(services: Services) -> list[Route]:
    token = services.settings.admin_token

    async def losses(request: Request) -> Response:
        require_admin(request, token)
        query = validate(LossesQuery, request.query_params)
        days, limit = query.days, query.limit
        account_id = await account_filter(services, request)
        since = time.time() - days * _SECONDS_PER_DAY if days else None
        totals = await services.losses.totals(since)
        rows = await services.losses.recent(limit, since, account_id)
        return JSONResponse(
            {
                "summary": {
                    "requests": totals.requests,
                    "unbilled_usd": nanos_to_usd(totals.unbilled),
                    "unbilled_upstream_cost_usd": nanos_to_usd(totals.unbilled_cost),
                    "requests_without_upstream_cost": totals.without_cost,
                    "days": days or None,
                },
                "data": [loss_row(row) for row in rows],
            }
        )

    return [Route("/admin/losses", losses, methods=["GET"])]
