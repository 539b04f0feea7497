"""Helpers for top-up tests: auth headers, invoice creation, ledger assertions."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.db.schema import transfers

from support import Gateway

BTC_USD = 100_000  # the fixed test rate: 1 sat = $0.001
DEV_ENV = {
    "FAREBOX_DEV_WALLET": "1",
    "FAREBOX_TOPUP_RATES": f"BTC={BTC_USD}",
    "FAREBOX_TOPUP_POLL_S": "0.3",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_topup(
    gw: Gateway, headers: dict[str, str], method: str = "btc-lightning", body: Any = None, **kw: Any
) -> httpx.Response:
    with gw.client() as c:
        if body is None:
            return c.post(f"/topup/create/{method}", headers=headers, **kw)
        if isinstance(body, bytes | str):
            return c.post(
                f"/topup/create/{method}",
                headers={**headers, "Content-Type": "application/json"},
                content=body,
            )
        return c.post(f"/topup/create/{method}", headers=headers, json=body)


def topup_status(gw: Gateway, headers: dict[str, str], invoice_id: str) -> httpx.Response:
    with gw.client() as c:
        return c.get(f"/topup/status/{invoice_id}", headers=headers)


def assert_clean(gw: Gateway) -> None:
    report = gw.check()
    assert report.ok, report.problems


def topup_transfers(gw: Gateway, credit_id: str) -> list[tuple[str, int]]:
    """(transfer id, amount) of every topups -> account transfer."""

    def read(conn: Any) -> list[tuple[str, int]]:
        rows = conn.execute(
            select(transfers.c.id, transfers.c.amount)
            .where(transfers.c.debit_account_id == "topups")
            .where(transfers.c.credit_account_id == gw.account_id(credit_id))
        )
        return [(r[0], int(r[1])) for r in rows]

    return gw.loop.run(gw.services.db.read(read))


BTCPAY_STORE = "Fb7StoreXq1dVhPqS9wW2bq6TtUo"
BTCPAY_KEY = "4f0b3c1b5f7d4b22b0c1e0e5c2a7d9f3b8e6a1c4"
BTCPAY_SECRET = "whsec-farebox-test-3f9c"


def btcpay_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "FAREBOX_BTCPAY_URL": url,
        "FAREBOX_BTCPAY_API_KEY": BTCPAY_KEY,
        "FAREBOX_BTCPAY_STORE_ID": BTCPAY_STORE,
        "FAREBOX_BTCPAY_WEBHOOK_SECRET": BTCPAY_SECRET,
        "FAREBOX_TOPUP_RATES": f"BTC={BTC_USD}",
        "FAREBOX_TOPUP_POLL_S": "0.3",
        **extra,
    }


class Forwarder:
    """Relays POSTs to `target` (same path and body): lets a server that must be told a callback
    URL before the gateway's port is known reach the gateway anyway."""

    def __init__(self) -> None:
        self.target = ""
        self.received = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["POST"])])

    async def _forward(self, request: Request) -> Response:
        self.received += 1
        body = await request.body()
        async with httpx.AsyncClient(timeout=30) as client:
            reply = await client.post(
                self.target + request.url.path,
                content=body,
                headers={"Content-Type": request.headers.get("content-type", "application/json")},
            )
        return Response(reply.content, reply.status_code, media_type="application/json")
