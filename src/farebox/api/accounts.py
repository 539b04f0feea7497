"""POST /accounts/create, POST /credits/balance and POST /credits/rotate.

The credit_id is the account's password: it is returned by create (once) and by rotate (the new
one), echoed by balance only to a caller who sent it, and never shown to an API key.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.keys import key_payload
from farebox.api.requests import bearer_key, read_body
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.accounts import CreditsBalanceBody
from farebox.api.wire.validate import validate
from farebox.errors import InvalidRequest, NotFound
from farebox.inputs import parse_json_object
from farebox.ledger.types import Balance
from farebox.money import nanos_to_usd


def balance_payload(account_id: str, balance: Balance) -> dict[str, object]:
    return {
        "account_id": account_id,
        "balance": nanos_to_usd(balance.balance),
        "reserved": nanos_to_usd(balance.reserved),
        "available": nanos_to_usd(balance.available),
    }


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes

    async def create_account(request: Request) -> Response:
        await services.signup_limit.check(request.scope)
        new = await services.keys.create_account()
        return JSONResponse(
            {
                "credit_id": new.credit_id,
                "account_id": new.account_id,
                "api_key": new.api_key,
                "api_key_id": new.key.id,
            },
            status_code=201,
        )

    async def account_balance(account_id: str) -> Balance:
        await services.ledger.flush()  # read our own settlements
        balance = await services.ledger.balance(account_id)
        if balance is None:  # a credential always names an account; never answer with a 500
            raise NotFound("No such account.", param="credit_id")
        return balance

    async def credits_balance(request: Request) -> Response:
        raw = await read_body(request, limit)
        body = CreditsBalanceBody()
        if raw.strip():
            body = validate(CreditsBalanceBody, parse_json_object(raw))
        credit_id = body.credit_id
        if credit_id is not None:
            account_id = await services.keys.account_for_credit(credit_id)
            if account_id is None:
                raise NotFound(
                    "No account with that credit_id. Create one with POST /accounts/create.",
                    param="credit_id",
                )
            payload = balance_payload(account_id, await account_balance(account_id))
            return JSONResponse({"credit_id": credit_id, **payload})
        raw_key = bearer_key(request)
        if raw_key is None:
            raise InvalidRequest(
                'Send {"credit_id": "..."} in the body, or an API key.', param="credit_id"
            )
        # A key sees the account's balance and its own usage and limit: never the credit_id,
        # which would let a delegated (limited) key manage the account.
        key = await services.keys.authenticate(raw_key)
        balance = await account_balance(key.account_id)
        fresh = await services.keys.reload(key.id, key.account_id)
        return JSONResponse(
            {
                **balance_payload(key.account_id, balance),
                "key": key_payload(fresh, services.keys, show_key=False),
            }
        )

    async def rotate(request: Request) -> Response:
        account_id, fresh = await services.keys.rotate_credit(request.headers.get("x-credit-id"))
        return JSONResponse({"status": "success", "credit_id": fresh, "account_id": account_id})

    return [
        Route("/accounts/create", create_account, methods=["POST"]),
        Route("/credits/balance", credits_balance, methods=["POST"]),
        Route("/credits/rotate", rotate, methods=["POST"]),
    ]
