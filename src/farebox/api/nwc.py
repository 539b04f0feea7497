"""NWC auto top-up (PPQ's paths), authenticated by x-credit-id."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.accounts import NwcConnect
from farebox.api.wire.validate import validate
from farebox.errors import InvalidRequest
from farebox.inputs import parse_exact_json_object
from farebox.isotime import iso_utc as iso
from farebox.money import NANOS_PER_USD, format_usd, nanos_to_usd, read_amount
from farebox.nwc.store import NwcAttempt, NwcConnection
from farebox.payments.amounts import METHODS
from farebox.payments.errors import MethodUnavailable
from farebox.payments.types import Method

DEFAULT_THRESHOLD = 10 * NANOS_PER_USD
MIN_THRESHOLD = 5 * NANOS_PER_USD
MAX_THRESHOLD = 100_000 * NANOS_PER_USD
DEFAULT_TOPUP = 10 * NANOS_PER_USD
CENT_PLACES = 2
NANOS_PER_CENT = NANOS_PER_USD // 100
CONNECT_EXAMPLE = (
    '{"nwc_url": "nostr+walletconnect://...", "threshold_usd": 5, "topup_amount_usd": 10}'
)


def parse_usd(raw: object, name: str, default: int, low: int, high: int) -> int:
    """A whole-cent USD amount (`raw`, the field `name`) as nanodollars, within [low, high]."""
    if raw is None:
        return default
    cents = read_amount(raw, name, CENT_PLACES, "USD")
    nanos = cents * NANOS_PER_CENT
    if not low <= nanos <= high:
        raise InvalidRequest(
            f"{name} must be between {format_usd(low)} and {format_usd(high)} USD.", param=name
        )
    return nanos


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
        raw = parse_exact_json_object(await read_body(request, 16 * 1024), CONNECT_EXAMPLE)
        body = validate(NwcConnect, raw)
        uri = body.nwc_url
        threshold = parse_usd(
            body.threshold_usd, "threshold_usd", DEFAULT_THRESHOLD, MIN_THRESHOLD, MAX_THRESHOLD
        )
        topup = parse_usd(
            body.topup_amount_usd,
            "topup_amount_usd",
            DEFAULT_TOPUP,
            int(lightning.min_usd * NANOS_PER_USD),
            int(lightning.max_usd * NANOS_PER_USD),
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
