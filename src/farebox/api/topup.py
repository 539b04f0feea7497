"""Top-ups (PPQ's paths): create an invoice, read its status, list methods; backend webhooks."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin import account_filter
from farebox.api.admin_auth import require_admin
from farebox.api.requests import bearer_key, read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.payments import AdminListQuery, TopupCreate
from farebox.api.wire.validate import validate
from farebox.errors import InvalidRequest, Unauthorized
from farebox.inputs import parse_exact_json_object
from farebox.isotime import iso_utc as iso
from farebox.money import nanos_to_usd
from farebox.payments import invoices
from farebox.payments.amounts import METHODS, parse_method
from farebox.payments.invoices import STATUSES, TopupInvoice
from farebox.payments.types import Method

BODY_LIMIT = 16 * 1024
TOPUP_EXAMPLE = '{"amount": ..., "currency": "SATS"|"BTC"|"USD"}'


def invoice_payload(invoice: TopupInvoice) -> dict[str, Any]:
    lightning = invoice.method == Method.LIGHTNING
    return {
        "invoice_id": invoice.id,
        "status": invoice.status,
        "method": invoice.method,
        "amount": invoice.amount,
        "currency": invoice.currency,
        "amount_usd": nanos_to_usd(invoice.usd_nanos),
        "amount_sats": invoice.sats,
        "amount_due": invoice.amount_due,
        "payment_request": invoice.bolt11
        if lightning
        else (invoice.payment_uri or invoice.address),
        "bolt11": invoice.bolt11 if lightning else None,
        "address": invoice.address,
        "payment_uri": invoice.payment_uri,
        "checkout_url": invoice.checkout_url,
        "credited_usd": nanos_to_usd(invoice.usd_nanos) if invoice.is_paid else 0,
        "overpaid": invoice.overpaid,
        "created_at": iso(invoice.created_at),
        "expires_at": iso(invoice.expires_at),
        # seconds left to pay: it stops at 0 once the invoice is paid or otherwise settled
        "expires_in": max(0, int(invoice.expires_at - time.time()))
        if invoice.status == invoices.PENDING
        else 0,
        "paid_at": iso(invoice.paid_at),
    }


def require_admin_token(request: Request, token: str | None) -> None:
    """The operator's bearer token (see api/admin_auth.py)."""
    require_admin(request, token)


async def account_of(services: Services, request: Request) -> str:
    """Bearer / api-key, or x-credit-id (PPQ accepts all three for top-ups)."""
    key = bearer_key(request)
    if key:
        return (await services.keys.authenticate(key)).account_id
    credit_id = request.headers.get("x-credit-id")
    if credit_id:
        return await services.keys.require_account(credit_id)
    raise Unauthorized(
        "Send your API key ('Authorization: Bearer sk-...' or 'api-key') or an x-credit-id header."
    )


def routes(services: Services) -> list[Route]:
    topups = services.topups

    async def create(request: Request) -> Response:
        method = parse_method(request.path_params["method"])
        account_id = await account_of(services, request)
        raw = parse_exact_json_object(await read_body(request, BODY_LIMIT), TOPUP_EXAMPLE)
        body = validate(TopupCreate, raw)
        invoice = await topups.create(account_id, method, body.amount, body.currency)
        return JSONResponse(invoice_payload(invoice), status_code=201)

    async def status(request: Request) -> Response:
        account_id = await account_of(services, request)
        invoice = await topups.status(account_id, request.path_params["invoice_id"])
        return JSONResponse(invoice_payload(invoice))

    async def payment_methods(request: Request) -> Response:
        data = []
        for method in Method:
            spec = METHODS[method]
            offer = topups.offers.get(method)
            data.append(
                {
                    "method": method.value,
                    "name": spec.label,
                    "enabled": offer is not None,
                    "currencies": [c.value for c in spec.currencies],
                    "min_usd": float(spec.min_usd),
                    "max_usd": float(spec.max_usd),
                    "confirmation": spec.confirmations,
                    "backend": offer.backend.name if offer else None,
                }
            )
        return JSONResponse({"status": "success", "data": data})

    async def webhook(request: Request) -> Response:
        body = await read_body(request, 256 * 1024)
        invoice = await topups.webhook(request.path_params["backend"], request.headers, body)
        return JSONResponse({"ok": True, "invoice_id": invoice.id, "status": invoice.status})

    async def admin_list(request: Request) -> Response:
        require_admin_token(request, services.settings.admin_token)
        query = validate(AdminListQuery, request.query_params)
        status = query.status or None
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", param="status")
        account_id = await account_filter(services, request)
        limit = query.limit
        rows = await services.db.read(
            lambda conn: invoices.list_invoices(
                conn, account_id=account_id, status=status, limit=limit
            )
        )
        return JSONResponse({"status": "success", "data": [invoices.admin_view(r) for r in rows]})

    return [
        Route("/admin/topups", admin_list, methods=["GET"]),
        Route("/topup/create/{method}", create, methods=["POST"]),
        Route("/topup/status/{invoice_id}", status, methods=["GET"]),
        Route("/topup/payment-methods", payment_methods, methods=["GET"]),
        Route("/topup/webhook/{backend}", webhook, methods=["POST"]),
    ]
