"""`POST /admin/dev/pay`: the dev wallet pays one of its own invoices (what `farebox dev pay`
asks the running gateway to do).

It moves no real money, yet a paid top-up credits an account, so it is guarded like a grant:
it exists only when the dev wallet is on (`--demo` or FAREBOX_DEV_WALLET=1), takes the admin
token, and answers only a client on this machine that no proxy relayed (a request with a
forwarding header is refused, whatever its peer address).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin_auth import require_admin
from farebox.api.requests import read_json
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.payments import DevPay
from farebox.api.wire.validate import validate
from farebox.errors import Forbidden, NotFound
from farebox.money import format_usd

if TYPE_CHECKING:
    from farebox.payments.devwallet import DevWallet

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _require_local(request: Request, services: Services) -> None:
    relayed = any(name in request.headers for name in FORWARDING_HEADERS)
    try:
        local = ipaddress.ip_address(services.clients.of(request.scope)).is_loopback
    except ValueError:
        local = False
    if relayed or not local:
        raise Forbidden("The dev wallet answers only on this machine (loopback, no proxy).")


def routes(services: Services) -> list[Route]:
    async def pay(request: Request) -> Response:
        _require_local(request, services)
        require_admin(request, services.settings.admin_token)
        wallet = services.topups.backend("devwallet")
        if wallet is None:
            raise NotFound(
                "This farebox has no dev wallet: it runs only with `farebox serve --demo` or "
                "FAREBOX_DEV_WALLET=1."
            )
        bolt11 = validate(DevPay, await read_json(request, 16 * 1024)).bolt11
        paid = cast("DevWallet", wallet).pay_and_credit(bolt11)  # built only with the dev wallet
        preimage, invoice, credited = await paid
        topup = None
        if invoice is not None:
            topup = {
                "invoice_id": invoice.id,
                "account_id": invoice.account_id,
                "status": invoice.status,
                "amount_usd": format_usd(invoice.usd_nanos),
                "credited": credited,
            }
        return JSONResponse({"preimage": preimage, "topup": topup})

    return [Route("/admin/dev/pay", pay, methods=["POST"])]
