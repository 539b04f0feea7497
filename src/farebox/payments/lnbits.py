"""LNbits (Lightning): invoices on one LNbits wallet, read back with its invoice key.

`POST /api/v1/payments {"out": false, "amount": sats, ...}` opens an invoice and returns its
`payment_hash` and `bolt11`; `GET /api/v1/payments/{payment_hash}` says `paid`. LNbits' webhook
(optional, needs FAREBOX_PUBLIC_URL) is unsigned, so it only names the payment hash and the status
is read back from the API before anything is credited. LNbits double-encodes the webhook body
(a JSON string holding JSON); both forms are accepted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import orjson

from farebox.errors import InvalidRequest
from farebox.payments.errors import PaymentBackendError
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

NAME = "lnbits"
WEBHOOK_PATH = "/topup/webhook/lnbits"


class LNbits:
    name = NAME

    def __init__(self, url: str, invoice_key: str, public_url: str | None = None) -> None:
        self._http = BackendHTTP(url, {"X-Api-Key": invoice_key}, "LNbits")
        self._webhook = public_url.rstrip("/") + WEBHOOK_PATH if public_url else None
        self.capabilities = Capabilities(
            methods=frozenset({Method.LIGHTNING}),
            webhooks=self._webhook is not None,
            fiat_amounts=False,
        )

    async def create_invoice(self, request: InvoiceRequest) -> CreatedInvoice:
        body: dict[str, object] = {
            "out": False,
            "amount": request.sats,
            "unit": "sat",
            "memo": request.memo,
            "expiry": request.expiry_s,
            "extra": {"farebox_invoice_id": request.reference},
        }
        if self._webhook:
            body["webhook"] = self._webhook
        now = time.time()
        data = await self._http.request("POST", "/api/v1/payments", body)
        if not isinstance(data, dict):
            raise PaymentBackendError("LNbits' invoice response is not an object.")
        payment_hash = data.get("payment_hash")
        bolt11 = data.get("bolt11") or data.get("payment_request")
        if not isinstance(payment_hash, str) or not isinstance(bolt11, str):
            raise PaymentBackendError("LNbits' invoice response has no payment_hash or bolt11.")
        return CreatedInvoice(
            backend_invoice_id=payment_hash,
            expires_at=_timestamp(data.get("expiry")) or now + request.expiry_s,
            bolt11=bolt11,
            payment_uri="lightning:" + bolt11,
        )

    async def invoice_status(self, backend_invoice_id: str) -> BackendStatus:
        data = await self._http.request("GET", f"/api/v1/payments/{backend_invoice_id}")
        if not isinstance(data, dict):
            raise PaymentBackendError("LNbits' payment response is not an object.")
        if data.get("paid") is True:
            return BackendStatus(PayState.PAID)
        details = data.get("details") if isinstance(data.get("details"), dict) else {}
        assert isinstance(details, dict)
        status = data.get("status") or details.get("status")
        if status == "failed":
            return BackendStatus(PayState.FAILED, FailReason.EXPIRED)
        expiry = _timestamp(details.get("expiry"))
        if expiry is not None and expiry < time.time():
            return BackendStatus(PayState.FAILED, FailReason.EXPIRED)
        return BackendStatus(PayState.PENDING)

    async def btc_usd(self) -> Decimal:
        data = await self._http.request("GET", "/api/v1/rate/USD")
        try:
            return Decimal(str(data["price"]))
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise PaymentBackendError("LNbits has no USD rate.") from exc

    def webhook_invoice_id(self, headers: Mapping[str, str], body: bytes) -> str:
        try:
            payload = orjson.loads(body)
            if isinstance(payload, str):
                payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The webhook body is not JSON.") from None
        payment_hash = payload.get("payment_hash") if isinstance(payload, dict) else None
        if not isinstance(payment_hash, str) or len(payment_hash) != 64:
            raise InvalidRequest("The webhook names no payment_hash.")
        return payment_hash

    async def close(self) -> None:
        await self._http.close()


def _timestamp(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC).timestamp()
        return parsed.timestamp()
    return None
