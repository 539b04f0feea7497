"""GET /queries/history (PPQ's auth options, filters and pagination)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.keys import iso
from farebox.api.requests import bearer_key, query_bool, query_int
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.errors import InvalidRequest, NotFound, Unauthorized
from farebox.history.store import MAX_PAGE_COUNT, HistoryFilter
from farebox.money import nanos_to_usd


def date_param(request: Request, name: str, end_of_day: bool) -> float | None:
    """PPQ's `start_date` / `end_date`: an ISO 8601 date or time (a bare end date includes its
    whole day); a 400 naming the parameter otherwise."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date such as 2026-11-01", param=name
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if end_of_day and len(raw) <= 10:  # a bare date: include the whole day
        when += timedelta(days=1) - timedelta(microseconds=1)
    return when.timestamp()


def text_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and (len(value) > 200 or "\x00" in value):
        raise InvalidRequest(f"{name} is not a valid filter value", param=name)
    return value


def _private_fields(row: Any) -> dict[str, Any]:
    """A private query's enclave attestation fingerprint, and why its charge is an estimate."""
    if row.attestation is None and row.reconcile is None:
        return {}
    return {"attestation_fingerprint": row.attestation, "reconcile": row.reconcile}


def routes(services: Services) -> list[Route]:
    async def history(request: Request) -> Response:
        params = request.query_params
        raw_key = bearer_key(request)
        # The header keeps the credit_id out of URLs; PPQ's ?credit_id= works too (and the
        # access log never shows it: see farebox/redaction.py).
        credit_id = request.headers.get("x-credit-id") or params.get("credit_id")
        key_filter: str | None = None
        if raw_key:
            key = await services.keys.authenticate(raw_key)
            account_id = key.account_id
            if not query_bool(request, "all_keys"):
                key_filter = key.id
            if params.get("api_key"):
                raise InvalidRequest(
                    "api_key filters only when authenticated with credit_id", param="api_key"
                )
        elif credit_id:
            account_id = await services.keys.require_account(credit_id, param="credit_id")
            if params.get("all_keys"):
                raise InvalidRequest(
                    "all_keys is only valid when authenticated with an API key", param="all_keys"
                )
            if params.get("api_key"):
                # A filter, not a credential: a revoked or expired key's history stays readable.
                found = await services.keys.find(params["api_key"])
                if found is None or found.account_id != account_id:
                    raise NotFound(
                        "That api_key is not one of this account's keys. List them with "
                        "GET /keys?show_key=true.",
                        param="api_key",
                    )
                key_filter = found.id
        else:
            raise Unauthorized(
                "Authenticate with 'Authorization: Bearer sk-...', an 'api-key' header, or an "
                "'x-credit-id' header (PPQ's ?credit_id=... works too)"
            )
        page = query_int(request, "page", 1, 1, 10**9)
        page_count = query_int(request, "page_count", 20, 1, MAX_PAGE_COUNT)
        f = HistoryFilter(
            account_id=account_id,
            key_id=key_filter,
            start=date_param(request, "start_date", False),
            end=date_param(request, "end_date", True),
            model=text_param(request, "model"),
            query_source=text_param(request, "query_source"),
            query_type=text_param(request, "query_type"),
            page=page,
            page_count=page_count,
        )
        await services.ledger.flush()
        result = await services.history.page(f)
        data = [
            {
                "timestamp": iso(r.created_at),
                "model": r.model,
                "input_count": int(r.input_count),
                "output_count": int(r.output_count),
                "price_in_usd": nanos_to_usd(int(r.price)),
                "query_type": r.query_type,
                "query_source": r.query_source,
                "api_key_id": r.key_id,
                "isOnline": bool(r.is_online),
                "isFreeModel": bool(r.is_free_model),
                **_private_fields(r),
            }
            for r in result.rows
        ]
        return JSONResponse(
            {
                "status": "success",
                "data": data,
                "pagination": {
                    "page": page,
                    "page_count": page_count,
                    "total": result.total,
                    "total_pages": (result.total + page_count - 1) // page_count,
                },
            }
        )

    return [Route("/queries/history", history, methods=["GET"])]
