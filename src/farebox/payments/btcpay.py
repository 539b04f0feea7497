"""BTCPay Server through its Greenfield API: invoices for all five methods, signed webhooks.

Greenfield: `POST /api/v1/stores/{storeId}/invoices`, `GET .../invoices/{invoiceId}` and
`GET .../invoices/{invoiceId}/payment-methods` (the BOLT11 or address to pay), auth
`Authorization: token <api key>`. Webhooks carry `BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw
body keyed with the webhook secret>`; a verified delivery only names the invoice, whose status is
then read back from the API (so replays and forged-but-signed-late events decide nothing).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from farebox.errors import InvalidRequest
from farebox.payments.errors import PaymentBackendError, WebhookRejected
from farebox.payments.http import BackendHTTP
from farebox.payments.types import (
    BackendStatus,
    Capabilities,
    CreatedInvoice,
    FailReason,
    InvoiceRequest,
    Method,
    PayState,
)

NAME = "btcpay"
SIGNATURE_HEADER = "btcpay-sig"

# BTCPay 2.x payment method ids (1.x used "BTC" and "BTC-LightningNetwork"; configurable).
DEFAULT_PAYMENT_METHODS: dict[Method, str] = {
    Method.LIGHTNING: "BTC-LN",
    Method.BTC: "BTC-CHAIN",
    Method.LTC: "LTC-CHAIN",
    Method.LBTC: "LBTC-CHAIN",
    Method.XMR: "XMR-CHAIN",
}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.lower().startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Compare bytes: compare_digest refuses str with non-ASCII characters.
    given = header[7:].strip().lower().encode(errors="replace")
    return hmac.compare_digest(expected.encode(), given)


def parse_payment_methods(spec: str) -> dict[Method, str]:
    """`btc-lightning=BTC-LN,btc=BTC-CHAIN` (the methods this store offers)."""
    table: dict[Method, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        method, _, pmid = part.partition("=")
        table[Method(method.strip())] = (
            pmid.strip() or DEFAULT_PAYMENT_METHODS[Method(method.strip())]
        )
    return table


def status_from_invoice(data: Mapping[str, Any]) -> BackendStatus:
    status = data.get("status")
    extra = data.get("additionalStatus") or "None"
    if status == "Settled":
        return BackendStatus(PayState.PAID, overpaid=extra == "PaidOver")
    if status in ("New", "Processing"):
        return BackendStatus(PayState.PENDING)
    if status == "Expired":
        reason = {"PaidPartial": FailReason.UNDERPAID, "PaidLate": FailReason.PAID_LATE}.get(
            extra, FailReason.EXPIRED
        )
        return BackendStatus(PayState.FAILED, reason)
    if status == "Invalid":
        return BackendStatus(PayState.FAILED, FailReason.INVALID)
    raise PaymentBackendError(f"BTCPay returned an unknown invoice status {str(status)[:40]!r}.")


class BTCPay:
    name = NAME

    def __init__(
        self,
        url: str,
        api_key: str,
        store_id: str,
        webhook_secret: str | None,
        payment_methods: Mapping[Method, str] | None = None,
    ) -> None:
        self.store_id = store_id
        self._webhook_secret = webhook_secret
        self.payment_methods = dict(payment_methods or DEFAULT_PAYMENT_METHODS)
        self.capabilities = Capabilities(
            methods=frozenset(self.payment_methods),
            webhooks=webhook_secret is not None,
            fiat_amounts=True,
        )
        self._http = BackendHTTP(url, {"Authorization": f"token {api_key}"}, "BTCPay")

    def _store(self, path: str = "") -> str:
        return f"/api/v1/stores/{self.store_id}{path}"

    async def create_invoice(self, request: InvoiceRequest) -> CreatedInvoice:
        pmid = self.payment_methods[request.method]
        body = {
            "amount": format(request.amount, "f"),
            "currency": request.currency.value,
            "metadata": {"orderId": request.reference, "itemDesc": request.memo},
            "checkout": {
                "paymentMethods": [pmid],
                "defaultPaymentMethod": pmid,
                "expirationMinutes": max(1, request.expiry_s // 60),
            },
        }
        invoice = await self._http.request("POST", self._store("/invoices"), body)
        if not isinstance(invoice, dict) or not isinstance(invoice.get("id"), str):
            raise PaymentBackendError("BTCPay's invoice response has no id.")
        methods = await self._http.request(
            "GET", self._store(f"/invoices/{invoice['id']}/payment-methods")
        )
        chosen = next(
            (
                m
                for m in methods or []
                if isinstance(m, dict)
                and (m.get("paymentMethodId") or m.get("paymentMethod")) == pmid
            ),
            None,
        )
        if chosen is None:
            raise PaymentBackendError(
                f"BTCPay did not activate payment method {pmid} for this invoice; "
                "check the store's wallet setup."
            )
        destination = chosen.get("destination")
        is_lightning = request.method is Method.LIGHTNING
        return CreatedInvoice(
            backend_invoice_id=invoice["id"],
            expires_at=float(invoice.get("expirationTime") or 0),
            bolt11=destination if is_lightning else None,
            address=None if is_lightning else destination,
            payment_uri=chosen.get("paymentLink"),
            amount_due=_decimal_text(chosen.get("amount")),
            checkout_url=invoice.get("checkoutLink"),
        )

    async def invoice_status(self, backend_invoice_id: str) -> BackendStatus:
        data = await self._http.request("GET", self._store(f"/invoices/{backend_invoice_id}"))
        if not isinstance(data, dict):
            raise PaymentBackendError("BTCPay's invoice response is not an object.")
        return status_from_invoice(data)

    async def btc_usd(self) -> Decimal:
        data = await self._http.request(
            "GET", self._store("/rates"), params={"currencyPair": "BTC_USD"}
        )
        for pair in data or []:
            if isinstance(pair, dict) and pair.get("currencyPair") == "BTC_USD":
                rate = _decimal_text(pair.get("rate"))
                if rate is not None:
                    return Decimal(rate)
        raise PaymentBackendError("BTCPay has no BTC_USD rate for this store.")

    def webhook_invoice_id(self, headers: Mapping[str, str], body: bytes) -> str:
        if self._webhook_secret is None:
            raise WebhookRejected("BTCPay webhooks are off: set FAREBOX_BTCPAY_WEBHOOK_SECRET.")
        if not verify_signature(self._webhook_secret, body, headers.get(SIGNATURE_HEADER)):
            raise WebhookRejected("Missing or invalid BTCPay-Sig signature.")
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The webhook body is not JSON.") from None
        if not isinstance(event, dict):
            raise InvalidRequest("The webhook body is not a JSON object.")
        if event.get("storeId") != self.store_id:
            raise InvalidRequest("The webhook is for another BTCPay store.")
        event_type, invoice_id = event.get("type"), event.get("invoiceId")
        if not isinstance(event_type, str) or not event_type.startswith("Invoice"):
            raise InvalidRequest("Only invoice webhooks are handled here.")
        if not isinstance(invoice_id, str) or not invoice_id:
            raise InvalidRequest("The webhook names no invoiceId.")
        return invoice_id

    async def close(self) -> None:
        await self._http.close()


def _decimal_text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return format(Decimal(str(value)), "f")
    except InvalidOperation:
        return None
