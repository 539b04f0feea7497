"""POST /accounts/create and POST /credits/balance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import bearer_key, read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.chat.request import parse_json_object
from farebox.errors import InvalidRequest, NotFound
from farebox.ledger.types import Balance
from farebox.money import nanos_to_usd


def balance_payload(credit_id: str, balance: Balance) -> dict[str, object]:
    return {
        "credit_id": credit_id,
        "balance": nanos_to_usd(balance.balance),
        "reserved": nanos_to_usd(balance.reserved),
        "available": nanos_to_usd(balance.available),
    }


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes

    async def create_account(request: Request) -> Response:
        await services.signup_limit.check(request.scope)
        credit_id, key, raw = await services.keys.create_account()
        return JSONResponse(
            {"credit_id": credit_id, "api_key": raw, "api_key_id": key.id}, status_code=201
        )

    async def credits_balance(request: Request) -> Response:
        raw = await read_body(request, limit)
        credit_id: str | None = None
        if raw.strip():
            body = parse_json_object(raw)
            value = body.get("credit_id")
            if value is not None and not isinstance(value, str):
                raise InvalidRequest("credit_id must be a string", param="credit_id")
            credit_id = value
        if credit_id is None:
            key = bearer_key(request)
            if key is None:
                raise InvalidRequest(
                    'Send {"credit_id": "..."} in the body, or an API key.', param="credit_id"
                )
            credit_id = (await services.keys.authenticate(key)).account_id
        await services.ledger.flush()  # read our own settlements
        # Only customer accounts: the operator's revenue and grants are nobody's credit_id.
        is_customer = await services.keys.is_customer(credit_id)
        balance = await services.ledger.balance(credit_id) if is_customer else None
        if balance is None:
            raise NotFound(
                "No account with that credit_id. Create one with POST /accounts/create.",
                param="credit_id",
            )
        return JSONResponse(balance_payload(credit_id, balance))

    return [
        Route("/accounts/create", create_account, methods=["POST"]),
        Route("/credits/balance", credits_balance, methods=["POST"]),
    ]
