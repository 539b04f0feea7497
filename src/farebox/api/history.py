"""GET /queries/history (PPQ's auth options, filters and pagination)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import bearer_key
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.payments import HistoryQuery
from farebox.api.wire.validate import validate
from farebox.errors import InvalidRequest, NotFound, Unauthorized
from farebox.history.store import HistoryFilter
from farebox.isotime import iso_utc as iso
from farebox.money import nanos_to_usd


def _private_fields(row: Any) -> dict[str, Any]:
    """A private query's enclave attestation fingerprint, and why its charge is an estimate."""
    if row.attestation is None and row.reconcile is None:
        return {}
    return {"attestation_fingerprint": row.attestation, "reconcile": row.reconcile}


def routes(services: Services) -> list[Route]:
    async def history(request: Request) -> Response:
        params = validate(HistoryQuery, request.query_params)
        raw_key = bearer_key(request)
        # The header keeps the credit_id out of URLs; PPQ's ?credit_id= works too (and the
        # access log never shows it: see farebox/redaction.py).
        credit_id = request.headers.get("x-credit-id") or params.credit_id
        key_filter: str | None = None
        if raw_key:
            key = await services.keys.authenticate(raw_key)
            account_id = key.account_id
            if not params.all_keys:
                key_filter = key.id
            if params.api_key:
                raise InvalidRequest(
                    "api_key filters only when authenticated with credit_id", param="api_key"
                )
        elif credit_id:
            account_id = await services.keys.require_account(credit_id, param="credit_id")
            if params.all_keys is not None:
                raise InvalidRequest(
                    "all_keys is only valid when authenticated with an API key", param="all_keys"
                )
            if params.api_key:
                # A filter, not a credential: a revoked or expired key's history stays readable.
                found = await services.keys.find(params.api_key)
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
        page, page_count = params.page, params.page_count
        f = HistoryFilter(
            account_id=account_id,
            key_id=key_filter,
            start=params.start_date,
            end=params.end_date,
            model=params.model,
            query_source=params.query_source,
            query_type=params.query_type,
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
