"""NWC auto top-up (PPQ's paths), authenticated by x-credit-id."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.topup import iso, parse_exact_json
from farebox.errors import InvalidRequest
from farebox.money import NANOS_PER_USD, nanos_to_usd
from farebox.nwc.store import NwcAttempt, NwcConnection
from farebox.nwc.uri import parse_nwc_url
from farebox.payments.amounts import METHODS, parse_amount
from farebox.payments.errors import MethodUnavailable
from farebox.payments.types import Currency, Method

DEFAULT_THRESHOLD = Decimal(10)
MIN_THRESHOLD = Decimal(5)
DEFAULT_TOPUP = Decimal(10)


def parse_usd(
    body: dict[str, Any], name: str, default: Decimal, low: Decimal, high: Decimal
) -> int:
    raw = body.get(name)
    if raw is None:
        return int(default * NANOS_PER_USD)
    try:
        value = parse_amount(raw, Currency.USD)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{name}: {exc.message}", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high} USD.", param=name)
    return int(value * NANOS_PER_USD)


def connection_payload(
    connection: NwcConnection | None, attempts: list[NwcAttempt]
) -> dict[str, Any]:
    if connection is None:
        return {"status": "success", "connected": False}
    return {
        "status": "success",
        "connected": True,
        "wallet_pubkey": connection.wallet_pubkey,
        "relays": list(connection.relays),
        "threshold_usd": nanos_to_usd(connection.threshold_nanos),
        "topup_amount_usd": nanos_to_usd(connection.topup_nanos),
        "created_at": iso(connection.created_at),
        "last_attempt_at": iso(connection.last_attempt_at),
        "last_success_at": iso(connection.last_success_at),
        "last_error": connection.last_error,
        "failures": connection.failures,
        "next_attempt_at": iso(connection.next_attempt_at),
        "attempts": [
            {
                "id": a.id,
                "outcome": a.outcome,
                "invoice_id": a.invoice_id,
                "error": a.error,
                "started_at": iso(a.started_at),
                "finished_at": iso(a.finished_at),
            }
            for a in attempts
        ],
    }


def routes(services: Services) -> list[Route]:
    auto = services.nwc
    lightning = METHODS[Method.LIGHTNING]

    async def account(request: Request) -> str:
        return await services.keys.require_account(request.headers.get("x-credit-id"))

    async def connect(request: Request) -> Response:
        account_id = await account(request)
        if Method.LIGHTNING not in services.topups.offers:
            raise MethodUnavailable(
                "Auto top-up needs Lightning, and this server has no Lightning payment backend.",
                param="nwc_url",
            )
        body = parse_exact_json(await read_body(request, 16 * 1024))
        uri = parse_nwc_url(body.get("nwc_url"))
        threshold = parse_usd(
            body, "threshold_usd", DEFAULT_THRESHOLD, MIN_THRESHOLD, Decimal(100_000)
        )
        topup = parse_usd(
            body, "topup_amount_usd", DEFAULT_TOPUP, lightning.min_usd, lightning.max_usd
        )
        connection = await auto.connect(account_id, uri, threshold, topup)
        return JSONResponse(connection_payload(connection, []))

    async def get(request: Request) -> Response:
        connection, attempts = await auto.get(await account(request))
        return JSONResponse(connection_payload(connection, attempts))

    async def delete(request: Request) -> Response:
        await auto.disconnect(await account(request))
        return JSONResponse({"status": "success", "connected": False})

    return [
        Route("/nwc-auto-topup/connect", connect, methods=["POST"]),
        Route("/nwc-auto-topup", get, methods=["GET"]),
        Route("/nwc-auto-topup/connection", delete, methods=["DELETE"]),
    ]
