"""Top-up: choose a method and amount, pay the invoice (QR code, copy buttons) while the page
watches its status; NWC auto top-up settings with the last attempts. The same services as
`POST /topup/create/…`, `GET /topup/status/…` and `/nwc-auto-topup` (payments/, nwc/)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox import optional
from farebox.api.nwc import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOPUP,
    MAX_THRESHOLD,
    MIN_THRESHOLD,
    parse_usd,
)
from farebox.dashboard.sessions import CUSTOMER, Session
from farebox.dashboard.web import Web
from farebox.errors import FareboxError
from farebox.money import NANOS_PER_USD
from farebox.nwc.uri import parse_nwc_url
from farebox.payments import invoices
from farebox.payments.amounts import METHODS, parse_method
from farebox.payments.errors import MethodUnavailable
from farebox.payments.invoices import TopupInvoice
from farebox.payments.types import Currency, Method


def qr_svg(text: str) -> Markup:
    """The payment request as an inline SVG QR code (drawn here: no script, no image request).
    Only our own invoice text goes in, as path geometry."""
    code = optional.segno().make(text, error="m")  # loaded with the first invoice shown
    return Markup(code.svg_inline(scale=4, border=2, omitsize=True, dark="#000", light="#fff"))


def payment_text(invoice: TopupInvoice) -> tuple[str | None, str, str | None]:
    """(what to copy, its label, what the QR code holds) for the invoice's method."""
    if invoice.method == Method.LIGHTNING.value and invoice.bolt11:
        # Upper case: the QR code's compact alphanumeric mode; wallets read either case.
        return invoice.bolt11, "Lightning invoice (BOLT11)", "lightning:" + invoice.bolt11.upper()
    target = invoice.payment_uri or invoice.address
    label = "Payment URI" if invoice.payment_uri else "Address"
    return target, label, target


def routes(web: Web) -> list[Route]:
    services = web.services
    topups = services.topups

    async def balance_context(account_id: str) -> dict[str, Any]:
        await services.ledger.flush()
        return {"balance": await services.ledger.balance(account_id)}

    async def page(
        request: Request, session: Session, error: str | None = None, status: int = 200
    ) -> Response:
        assert session.account_id is not None
        account_id = session.account_id
        connection, attempts = await services.nwc.get(account_id)
        recent = await services.db.read(
            lambda conn: invoices.list_invoices(conn, account_id=account_id, limit=10)
        )
        methods = [METHODS[m] for m in Method if m in topups.offers]
        context = {
            **web.frame(session, "/dashboard/topup", "Top up"),
            **await balance_context(account_id),
            "methods": [
                {
                    "value": s.method.value,
                    "label": s.label,
                    "min_usd": s.min_usd,
                    "max_usd": s.max_usd,
                }
                for s in methods
            ],
            "amount": "5",
            "invoices": recent,
            "nwc": connection,
            "attempts": attempts[:10],
            "lightning": Method.LIGHTNING in topups.offers,
            "error": error,
            "notice": {
                "connected": "Wallet connected.",
                "disconnected": "Wallet disconnected.",
            }.get(request.query_params.get("done", "")),
        }
        return web.render("topup.html", context, status)

    @web.page(CUSTOMER)
    async def topup(request: Request) -> Response:
        return await page(request, await web.require(request, CUSTOMER))

    @web.page(CUSTOMER)
    async def create(request: Request) -> Response:
        session, account_id, form = await web.account_form(request)
        try:
            method = parse_method(form.get("method", ""))
            invoice = await topups.create(
                account_id, method, form.get("amount", "").strip(), Currency.USD.value
            )
        except FareboxError as exc:
            return await page(request, session, exc.message, exc.status)
        return web.redirect(f"/dashboard/topup/{invoice.id}", request)

    @web.page(CUSTOMER)
    async def invoice_page(request: Request) -> Response:
        session = await web.require(request, CUSTOMER)
        assert session.account_id is not None
        invoice = await topups.status(session.account_id, request.path_params["invoice_id"])
        text, label, qr_text = payment_text(invoice)
        spec = METHODS[Method(invoice.method)]
        context = {
            **web.frame(session, "/dashboard/topup", "Top-up invoice"),
            **await balance_context(session.account_id),
            "invoice": invoice,
            "method_label": spec.label,
            "coin": spec.coin,
            "pay_text": text,
            "pay_label": label,
            "qr": qr_svg(qr_text) if qr_text else None,
        }
        return web.render("invoice.html", context)

    @web.page(CUSTOMER)
    async def invoice_status(request: Request) -> Response:
        session = await web.require(request, CUSTOMER, activity=False)
        assert session.account_id is not None
        invoice = await topups.status(session.account_id, request.path_params["invoice_id"])
        # Tell the page's balance to refresh at once when the money has landed.
        headers = {"hx-trigger": "balance-changed"} if invoice.status != "pending" else None
        return web.render("_invoice_status.html", {"invoice": invoice}, headers=headers)

    @web.page(CUSTOMER)
    async def nwc_connect(request: Request) -> Response:
        session, account_id, form = await web.account_form(request)
        body: dict[str, object] = {
            name: form[name].strip()
            for name in ("threshold_usd", "topup_amount_usd")
            if form.get(name, "").strip()
        }
        lightning = METHODS[Method.LIGHTNING]
        try:
            if Method.LIGHTNING not in topups.offers:
                raise MethodUnavailable("Auto top-up needs Lightning, which this server lacks.")
            uri = parse_nwc_url(form.get("nwc_url", "").strip())
            threshold = parse_usd(
                body, "threshold_usd", DEFAULT_THRESHOLD, MIN_THRESHOLD, MAX_THRESHOLD
            )
            amount = parse_usd(
                body,
                "topup_amount_usd",
                DEFAULT_TOPUP,
                int(lightning.min_usd * NANOS_PER_USD),
                int(lightning.max_usd * NANOS_PER_USD),
            )
            await services.nwc.connect(account_id, uri, threshold, amount)
        except FareboxError as exc:
            return await page(request, session, exc.message, exc.status)
        return web.redirect("/dashboard/topup?done=connected", request)

    @web.page(CUSTOMER)
    async def nwc_disconnect(request: Request) -> Response:
        _session, account_id, _form = await web.account_form(request)
        await services.nwc.disconnect(account_id)
        return web.redirect("/dashboard/topup?done=disconnected", request)

    return [
        Route("/dashboard/topup", topup, methods=["GET"]),
        Route("/dashboard/topup", create, methods=["POST"]),
        Route("/dashboard/topup/{invoice_id}", invoice_page, methods=["GET"]),
        Route("/dashboard/topup/{invoice_id}/status", invoice_status, methods=["GET"]),
        Route("/dashboard/nwc", nwc_connect, methods=["POST"]),
        Route("/dashboard/nwc/disconnect", nwc_disconnect, methods=["POST"]),
    ]
