"""Operator API (Authorization: Bearer $FAREBOX_ADMIN_TOKEN): grant credit (to an account named
by its public id or by its credit_id)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.accounts import balance_payload
from farebox.api.admin_auth import require_admin as check_admin_token
from farebox.api.requests import read_json
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.accounts import AdminGrant, parse_grant_amount
from farebox.api.wire.validate import validate
from farebox.errors import InvalidRequest, NotFound
from farebox.inputs import plausible_id
from farebox.ledger.service import Ledger
from farebox.ledger.types import GRANTS, Code, Transfer

__all__ = ["account_filter", "grant", "granted_account", "parse_grant_amount", "routes"]


async def grant(ledger: Ledger, account_id: str, nanos: int, idempotency_key: str | None) -> str:
    """Credit a customer account (by its public id) from the grants account; the same
    idempotency key grants once."""
    if await ledger.balance(account_id) is None or account_id in (GRANTS, "revenue", "topups"):
        raise NotFound(f"No account {account_id}.", param="account_id")
    transfer_id = (
        "grant." + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}/{idempotency_key}"))
        if idempotency_key
        else "grant." + uuid.uuid4().hex
    )
    await ledger.transfer(Transfer(transfer_id, GRANTS, account_id, nanos, Code.GRANT))
    return transfer_id


async def granted_account(services: Services, body: dict[str, object]) -> str:
    """The public account id a grant names: by `account_id`, or by the customer's `credit_id`."""
    given = [name for name in ("account_id", "credit_id") if body.get(name) is not None]
    if len(given) != 1:
        raise InvalidRequest(
            "Name the account: account_id (its public id, acct_…) or credit_id, exactly one",
            param="account_id",
        )
    name = given[0]
    value = body[name]
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} must be a non-empty string", param=name)
    if name == "account_id":
        if not await services.keys.is_customer(value):
            # Not echoed: an operator may paste a credit_id here by mistake.
            raise NotFound("No customer account with that account_id (acct_…).", param=name)
        return value
    found = await services.keys.account_for_credit(value)
    if found is None:
        # Never echo a credit_id: it is a password, even a mistyped one.
        raise NotFound("No account with that credit_id.", param=name)
    return found


async def account_filter(services: Services, request: Request) -> str | None:
    """The account an admin listing is narrowed to: `?account_id=` (the public id), or the older
    `?credit_id=` (a secret in a URL; an unknown one matches nothing). None: every account."""
    credit_id = request.query_params.get("credit_id")
    if credit_id:
        return await services.keys.account_for_credit(credit_id) or "-"  # "-" matches no row
    account_id = request.query_params.get("account_id") or None
    if account_id is not None and not plausible_id(account_id):
        return "-"  # PostgreSQL refuses NUL in text: such an id names no account
    return account_id


def routes(services: Services) -> list[Route]:
    token = services.settings.admin_token
    limit = services.settings.max_body_bytes

    def require_admin(request: Request) -> None:
        check_admin_token(request, token)

    async def admin_credits(request: Request) -> Response:
        require_admin(request)
        body = validate(AdminGrant, await read_json(request, limit))
        named: dict[str, object] = {"account_id": body.account_id, "credit_id": body.credit_id}
        account_id = await granted_account(services, named)
        transfer_id = await grant(
            services.ledger, account_id, body.amount_usd, body.idempotency_key
        )
        balance = await services.ledger.balance(account_id)
        assert balance is not None
        return JSONResponse(
            {
                "status": "success",
                "transfer_id": transfer_id,
                **balance_payload(account_id, balance),
            }
        )

    return [Route("/admin/credits", admin_credits, methods=["POST"])]
