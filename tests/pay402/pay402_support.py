"""Helpers for the 402 tests: reading challenges off the wire, paying them with the dev wallet,
building credentials as a client would, and reading the ledger behind a paid credential."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import re
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import func, select

from farebox.db.schema import devwallet_invoices, queries, transfers
from farebox.pay402.store import account_id_for

from payments_support import DEV_ENV
from support import Gateway, missing_tool

# The dev wallet at BTC = $100,000 (1 sat = $0.001); challenge limiting off except where tested.
PAY_ENV = {**DEV_ENV, "FAREBOX_PAY402_CHALLENGES_PER_MIN": "0"}
GENERATIONS = "/v1/images/generations"
MEDIUM = {"model": "sim-image", "prompt": "a lighthouse at dusk"}  # $0.04 = 40 sats
LOW = {**MEDIUM, "quality": "low"}  # $0.01 = 10 sats
HIGH = {**MEDIUM, "quality": "high"}  # $0.17 = 170 sats

_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def post(
    gw: Gateway, body: Any, auth: str | None = None, path: str = GENERATIONS
) -> httpx.Response:
    headers = {"Authorization": auth} if auth else {}
    with gw.client() as c:
        return c.post(path, json=body, headers=headers)


def challenges(resp: httpx.Response) -> dict[str, dict[str, str]]:
    """{"L402": params, "Payment": params} from a 402's WWW-Authenticate headers."""
    found: dict[str, dict[str, str]] = {}
    for value in resp.headers.get_list("www-authenticate"):
        scheme, _, rest = value.partition(" ")
        found[scheme] = {k: v.replace('\\"', '"') for k, v in _PARAM.findall(rest)}
    return found


def l402(resp: httpx.Response) -> tuple[str, str]:
    """(macaroon, invoice) of the L402 challenge."""
    params = challenges(resp)["L402"]
    return params["macaroon"], params["invoice"]


def dev_pay(gw: Gateway, bolt11: str) -> str:
    """Pay an invoice with the gateway's dev wallet (what `farebox dev pay` does): the preimage."""
    wallet = gw.services.topups.backends["devwallet"]
    return str(gw.loop.run(wallet.pay(bolt11)))


def b64url_json(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def payment_credential(params: dict[str, str], preimage: str) -> str:
    """`Payment <credential>` for a challenge, echoing its parameters as a client does."""
    echoed = {k: params[k] for k in ("id", "realm", "method", "intent", "request", "expires")}
    if "opaque" in params:
        echoed["opaque"] = params["opaque"]
    return "Payment " + b64url_json({"challenge": echoed, "payload": {"preimage": preimage}})


def pay_l402(gw: Gateway, resp: httpx.Response, scheme: str = "L402") -> str:
    """Pay a 402's invoice; the L402 Authorization value for it."""
    mac, invoice = l402(resp)
    return f"{scheme} {mac}:{dev_pay(gw, invoice)}"


def payment_hash(resp: httpx.Response) -> str:
    return str(resp.json()["payment_hash"])


def credential_nanos(gw: Gateway, payment_hash_hex: str) -> tuple[int, int] | None:
    """(balance, reserved) of a paid credential's ledger account, None if never credited."""
    gw.loop.run(gw.services.ledger.flush())
    bal = gw.loop.run(gw.services.ledger.balance(account_id_for(payment_hash_hex)))
    return None if bal is None else (bal.balance, bal.reserved)


def history(gw: Gateway, payment_hash_hex: str) -> list[tuple[str, str, str, int]]:
    """(query_source, query_type, model, price) of a paid credential's history rows."""
    gw.loop.run(gw.services.ledger.flush())
    account = account_id_for(payment_hash_hex)

    def read(conn: Any) -> list[tuple[str, str, str, int]]:
        rows = conn.execute(
            select(queries.c.query_source, queries.c.query_type, queries.c.model, queries.c.price)
            .where(queries.c.account_id == account)
            .order_by(queries.c.id)
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    return list(gw.loop.run(gw.services.db.read(read)))


def money_in(gw: Gateway, payment_hash_hex: str) -> list[tuple[str, str, int]]:
    """(debit account, code, amount) of every transfer crediting a paid credential's account."""
    account = account_id_for(payment_hash_hex)

    def read(conn: Any) -> list[tuple[str, str, int]]:
        rows = conn.execute(
            select(transfers.c.debit_account_id, transfers.c.code, transfers.c.amount)
            .where(transfers.c.credit_account_id == account)
            .where(transfers.c.flags == 0)
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    return list(gw.loop.run(gw.services.db.read(read)))


def invoices_issued(gw: Gateway) -> int:
    def read(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(devwallet_invoices)).scalar())

    return int(gw.loop.run(gw.services.db.read(read)))


def revenue(gw: Gateway) -> int:
    gw.loop.run(gw.services.ledger.flush())
    bal = gw.loop.run(gw.services.ledger.balance("revenue"))
    assert bal is not None
    return bal.balance


def require(module: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        missing_tool(f"{package} is not installed: pip install -e '.[test]' (.ci/run does)")
        raise


class DevWallet:
    """Pays our invoices the way a real wallet would, and counts the payments."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.paid: list[str] = []

    def pay_sync(self, bolt11: str) -> str:
        self.paid.append(bolt11)
        return dev_pay(self.gw, bolt11)

    async def pay(self, bolt11: str) -> str:
        return await asyncio.to_thread(self.pay_sync, bolt11)


def l402_wallet(gw: Gateway) -> Any:
    wallets = require("l402_requests.wallets", "l402-requests")

    class DevWalletAdapter(wallets.WalletBase):  # type: ignore[misc,name-defined]
        """l402-requests' wallet port (`pay_invoice(bolt11) -> preimage hex`) on our dev wallet."""

        def __init__(self) -> None:
            self.wallet = DevWallet(gw)

        async def pay_invoice(self, bolt11: str) -> str:
            return await self.wallet.pay(bolt11)

        def pay_invoice_sync(self, bolt11: str) -> str:
            return self.wallet.pay_sync(bolt11)

    return DevWalletAdapter()
