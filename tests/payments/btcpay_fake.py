"""A contract fake of BTCPay Server's Greenfield API, for the parts farebox uses.

Built from BTCPay's published API (the Greenfield v1 reference and BTCPayServer.Client's models):
- `POST /api/v1/stores/{storeId}/invoices` takes `CreateInvoiceRequest` (`amount` as a string or
  number, `currency`, `metadata`, `checkout.paymentMethods`, `checkout.expirationMinutes`) and
  returns `InvoiceData` (`id`, `storeId`, `amount` as a string, `checkoutLink`, `status`
  New|Processing|Expired|Invalid|Settled, `additionalStatus` None|PaidLate|PaidPartial|Marked|
  Invalid|PaidOver, unix-second times);
- `GET /api/v1/stores/{storeId}/invoices/{invoiceId}` returns the same;
- `GET .../invoices/{invoiceId}/payment-methods` returns `InvoicePaymentMethodDataModel`s
  (BTCPay 2.x: `paymentMethodId` like `BTC-LN`, `destination`, `paymentLink`, `rate`, `amount`,
  `due`, `totalPaid`, `activated`, `payments`);
- `GET /api/v1/stores/{storeId}/rates?currencyPair=BTC_USD`;
- auth `Authorization: token <apikey>`; errors as `{"code", "message"}` (422: a list of
  `{"path", "message"}`);
- webhooks: POST of a `WebhookInvoiceEvent` JSON (`deliveryId`, `webhookId`,
  `originalDeliveryId`, `isRedelivery`, `type`, `timestamp`, `storeId`, `invoiceId`, `metadata`,
  plus `manuallyMarked`/`overPaid` on InvoiceSettled, `partiallyPaid` on InvoiceExpired,
  `afterExpiration`/`paymentMethodId`/`payment` on InvoiceReceivedPayment) with
  `BTCPay-Sig: sha256=<hex HMAC-SHA256(secret, raw body)>`.
Test controls (settle, expire, invalidate, deliver) are Python methods, not HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any

import httpx
from bolt11 import Bolt11, MilliSatoshi, TagChar, Tags, encode
from coincurve import PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RATES = {
    "BTC": Decimal("100000"),
    "LTC": Decimal("100"),
    "LBTC": Decimal("100000"),
    "XMR": Decimal("200"),
}
METHOD_COIN = {
    "BTC-LN": "BTC",
    "BTC-CHAIN": "BTC",
    "LTC-CHAIN": "LTC",
    "LBTC-CHAIN": "LBTC",
    "XMR-CHAIN": "XMR",
}
URI_SCHEME = {
    "BTC-CHAIN": "bitcoin",
    "LTC-CHAIN": "litecoin",
    "LBTC-CHAIN": "liquidnetwork",
    "XMR-CHAIN": "monero",
}
_NODE_KEY = PrivateKey(hashlib.sha256(b"btcpay fake lightning node").digest())


def _id() -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(22))


@dataclass
class FakeInvoice:
    id: str
    store_id: str
    amount: Decimal
    currency: str
    metadata: dict[str, Any]
    checkout: dict[str, Any]
    created: int
    expires: int
    methods: list[dict[str, Any]] = field(default_factory=list)
    status: str = "New"
    additional: str = "None"

    def data(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "storeId": self.store_id,
            "amount": format(self.amount, "f"),
            "currency": self.currency,
            "type": "Standard",
            "checkoutLink": f"{base_url}/i/{self.id}",
            "status": self.status,
            "additionalStatus": self.additional,
            "monitoringExpiration": self.expires + 86400,
            "expirationTime": self.expires,
            "createdTime": self.created,
            "availableStatusesForManualMarking": ["Settled", "Invalid"],
            "archived": False,
            "metadata": self.metadata,
            "checkout": self.checkout,
            "receipt": {"enabled": True, "showQR": True, "showPayments": True},
        }


class BTCPayFake:
    def __init__(self, store_id: str, api_key: str, webhook_secret: str) -> None:
        self.store_id = store_id
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_id = _id()
        self.invoices: dict[str, FakeInvoice] = {}
        self.create_requests: list[dict[str, Any]] = []
        self.request_ids: list[str | None] = []  # X-Request-Id of each Greenfield call
        self.fail_create: int | None = None  # answer the next invoice creation with this status
        self.down = False  # answer every request 503, as a BTCPay behind a dead proxy would
        self.base_url = ""
        self.webhook_url = ""
        self.app = Starlette(
            routes=[
                Route("/api/v1/stores/{store}/invoices", self._create, methods=["POST"]),
                Route("/api/v1/stores/{store}/invoices/{invoice}", self._get, methods=["GET"]),
                Route(
                    "/api/v1/stores/{store}/invoices/{invoice}/payment-methods",
                    self._payment_methods,
                    methods=["GET"],
                ),
                Route("/api/v1/stores/{store}/rates", self._rates, methods=["GET"]),
            ]
        )

    # -- Greenfield ------------------------------------------------------------------------

    def _guard(self, request: Request) -> Response | None:
        self.request_ids.append(request.headers.get("x-request-id"))
        if self.down:
            return Response("Service Unavailable", 503)
        if request.headers.get("authorization") != f"token {self.api_key}":
            return JSONResponse(
                {"code": "unauthenticated", "message": "Authentication is required"}, 401
            )
        if request.path_params["store"] != self.store_id:
            return JSONResponse(
                {"code": "store-not-found", "message": "The store was not found"}, 404
            )
        return None

    async def _create(self, request: Request) -> Response:
        if (refused := self._guard(request)) is not None:
            return refused
        if self.fail_create is not None:
            status, self.fail_create = self.fail_create, None
            return JSONResponse({"code": "server-error", "message": "boom"}, status)
        body = json.loads(await request.body(), parse_float=Decimal)
        self.create_requests.append(body)
        errors = []
        try:
            amount = Decimal(str(body.get("amount")))
            if amount <= 0:
                errors.append({"path": "amount", "message": "amount should be more than 0"})
        except InvalidOperation:
            errors.append({"path": "amount", "message": "Invalid amount"})
            amount = Decimal(0)
        currency = body.get("currency")
        if not isinstance(currency, str) or currency.upper() not in ("USD", "BTC", "SATS"):
            errors.append({"path": "currency", "message": "Invalid currency"})
        checkout = dict(body.get("checkout") or {})
        methods = checkout.get("paymentMethods") or list(METHOD_COIN)
        if any(m not in METHOD_COIN for m in methods):
            errors.append({"path": "checkout.paymentMethods", "message": "Invalid payment method"})
        if errors:
            return JSONResponse(errors, 422)
        now = int(time.time())
        minutes = int(checkout.get("expirationMinutes") or 15)
        checkout.setdefault("speedPolicy", "MediumSpeed")
        checkout.setdefault("monitoringMinutes", 1440)
        checkout.setdefault("paymentTolerance", 0.0)
        invoice = FakeInvoice(
            id=_id(),
            store_id=self.store_id,
            amount=amount,
            currency=str(currency).upper(),
            metadata=dict(body.get("metadata") or {}),
            checkout=checkout,
            created=now,
            expires=now + minutes * 60,
        )
        invoice.methods = [self._method(invoice, m) for m in methods]
        self.invoices[invoice.id] = invoice
        return JSONResponse(invoice.data(self.base_url))

    def _method(self, invoice: FakeInvoice, pmid: str) -> dict[str, Any]:
        coin = METHOD_COIN[pmid]
        in_usd = invoice.amount if invoice.currency == "USD" else invoice.amount * RATES["BTC"]
        if invoice.currency == "SATS":
            in_usd = invoice.amount / 100_000_000 * RATES["BTC"]
        due = (in_usd / RATES[coin]).quantize(Decimal("0.00000001"), rounding=ROUND_UP)
        if pmid == "BTC-LN":
            tags = Tags()
            tags.add(TagChar.payment_hash, os.urandom(32).hex())
            tags.add(TagChar.payment_secret, os.urandom(32).hex())
            tags.add(
                TagChar.description, f"Paid to store (Order ID: {invoice.metadata.get('orderId')})"
            )
            tags.add(TagChar.expire_time, invoice.expires - invoice.created)
            msat = int(due * 100_000_000_000)
            destination = encode(
                Bolt11(
                    currency="bc", amount_msat=MilliSatoshi(msat), date=invoice.created, tags=tags
                ),
                _NODE_KEY.to_hex(),
            )
            link = "lightning:" + destination
        else:
            prefix = {"BTC": "bc1q", "LTC": "ltc1q", "LBTC": "ex1q", "XMR": "4"}[coin]
            destination = prefix + secrets.token_hex(19)
            link = f"{URI_SCHEME[pmid]}:{destination}?amount={due}"
        return {
            "activated": True,
            "destination": destination,
            "paymentLink": link,
            "rate": format(RATES[coin], "f"),
            "paymentMethodPaid": "0",
            "totalPaid": "0",
            "due": format(due, "f"),
            "amount": format(due, "f"),
            "networkFee": "0",
            "payments": [],
            "paymentMethodId": pmid,
            "currency": coin,
        }

    async def _get(self, request: Request) -> Response:
        if (refused := self._guard(request)) is not None:
            return refused
        invoice = self.invoices.get(request.path_params["invoice"])
        if invoice is None:
            return JSONResponse(
                {"code": "invoice-not-found", "message": "The invoice was not found"}, 404
            )
        return JSONResponse(invoice.data(self.base_url))

    async def _payment_methods(self, request: Request) -> Response:
        if (refused := self._guard(request)) is not None:
            return refused
        invoice = self.invoices.get(request.path_params["invoice"])
        if invoice is None:
            return JSONResponse(
                {"code": "invoice-not-found", "message": "The invoice was not found"}, 404
            )
        return JSONResponse(invoice.methods)

    async def _rates(self, request: Request) -> Response:
        if (refused := self._guard(request)) is not None:
            return refused
        pairs = request.query_params.getlist("currencyPair") or ["BTC_USD"]
        return JSONResponse(
            [
                {"currencyPair": p, "errors": [], "rate": format(RATES[p.split("_")[0]], "f")}
                for p in pairs
            ]
        )

    # -- test controls -----------------------------------------------------------------------

    def find(self, farebox_invoice_id: str) -> FakeInvoice:
        return next(
            i for i in self.invoices.values() if i.metadata.get("orderId") == farebox_invoice_id
        )

    def settle(
        self, invoice: FakeInvoice, *, overpaid: bool = False, manually: bool = False
    ) -> None:
        invoice.status = "Settled"
        invoice.additional = "Marked" if manually else ("PaidOver" if overpaid else "None")

    def expire(self, invoice: FakeInvoice, *, partial: bool = False, late: bool = False) -> None:
        invoice.status = "Expired"
        invoice.additional = "PaidPartial" if partial else ("PaidLate" if late else "None")

    def invalidate(self, invoice: FakeInvoice) -> None:
        invoice.status, invoice.additional = "Invalid", "Marked"

    def event(self, invoice: FakeInvoice | str, event_type: str, **extra: Any) -> bytes:
        invoice_id = invoice if isinstance(invoice, str) else invoice.id
        metadata = {} if isinstance(invoice, str) else invoice.metadata
        delivery = _id()
        payload: dict[str, Any] = {
            "deliveryId": delivery,
            "webhookId": self.webhook_id,
            "originalDeliveryId": delivery,
            "isRedelivery": False,
            "type": event_type,
            "timestamp": int(time.time()),
            "storeId": extra.pop("storeId", self.store_id),
            "invoiceId": invoice_id,
            "metadata": metadata,
        }
        if event_type == "InvoiceSettled":
            payload |= {"manuallyMarked": False, "overPaid": False}
        elif event_type == "InvoiceExpired":
            payload |= {"partiallyPaid": False}
        elif event_type == "InvoiceInvalid":
            payload |= {"manuallyMarked": False}
        payload |= extra
        return json.dumps(payload, separators=(",", ":")).encode()

    @staticmethod
    def redelivery(body: bytes) -> bytes:
        """What "Redeliver" in BTCPay's UI sends: a new deliveryId, same event."""
        payload = json.loads(body)
        payload |= {"deliveryId": _id(), "isRedelivery": True}
        return json.dumps(payload, separators=(",", ":")).encode()

    def signature(self, body: bytes, secret: str | None = None) -> str:
        key = (secret or self.webhook_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def deliver(self, body: bytes, signature: str | None = "valid") -> httpx.Response:
        headers = {"Content-Type": "application/json", "User-Agent": "BTCPayServer"}
        if signature == "valid":
            headers["BTCPay-Sig"] = self.signature(body)
        elif signature is not None:
            headers["BTCPay-Sig"] = signature
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=30)
