"""A published Cashu wallet (PyPI `cashu`, nutshell 0.20.2) driven from the tests.

Usage: python cashu_wallet.py MINT_URL WALLET_DIR UNIT. Runs in the cashu virtualenv (its pins clash with farebox's), one command per line on stdin,
one JSON answer per line on stdout, so a test keeps one wallet process for many operations:

    {"op": "mint", "amount": 500}               -> {"balance": 500}
    {"op": "send", "amount": 21}                -> {"token": "cashuB..."}
    {"op": "pay", "request": "creqA...", "extra": 5}
        -> {"token": "cashuB...", "amount": N}  (NUT-18 decoded by the library; mint and unit
           checked as a paying wallet does; `extra` sats over the asked amount)
    {"op": "receive", "token": "cashuB..."}     -> {"received": N, "balance": M}
    {"op": "decode", "token": "cashuB..."}      -> the token as JSON (mint, unit, amount)
    {"op": "balance"}                           -> {"balance": M}

Errors come back as {"error": "..."} and the process keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any

from cashu.core.nuts.nut18 import deserialize as deserialize_payment_request
from cashu.wallet.helpers import deserialize_token_from_string, receive
from cashu.wallet.wallet import Wallet


async def wallet_for(mint: str, directory: str, unit: str) -> Wallet:
    wallet = await Wallet.with_db(mint, directory, name="tests", unit=unit)
    await wallet.load_mint()
    await wallet.load_proofs()
    return wallet


async def send_token(wallet: Wallet, amount: int) -> str:
    await wallet.load_proofs(reload=True)
    _, send = await wallet.swap_to_send(wallet.proofs, amount, set_reserved=True)
    return str(await wallet.serialize_proofs(send))


async def handle(wallet: Wallet, cmd: dict[str, Any]) -> dict[str, Any]:
    op = cmd["op"]
    if op == "mint":
        quote = await wallet.request_mint(int(cmd["amount"]))
        await wallet.mint(int(cmd["amount"]), quote_id=quote.quote)
    elif op == "send":
        return {"token": await send_token(wallet, int(cmd["amount"]))}
    elif op == "pay":
        request = deserialize_payment_request(cmd["request"])
        if request.m and wallet.url not in request.m:
            return {"error": f"mint {wallet.url} is not accepted: {request.m}"}
        if request.u != wallet.unit.name:
            return {"error": f"unit {request.u} is not {wallet.unit.name}"}
        amount = int(request.a or 0) + int(cmd.get("extra", 0))
        return {"token": await send_token(wallet, amount), "amount": amount}
    elif op == "receive":
        before = wallet.available_balance.amount
        await receive(wallet, deserialize_token_from_string(cmd["token"]))
        await wallet.load_proofs(reload=True)
        return {
            "received": int(wallet.available_balance.amount - before),
            "balance": int(wallet.available_balance.amount),
        }
    elif op == "decode":
        token = deserialize_token_from_string(cmd["token"])
        return {"mint": token.mint, "unit": token.unit, "amount": token.amount}
    elif op != "balance":
        return {"error": f"unknown op {op}"}
    await wallet.load_proofs(reload=True)
    return {"balance": int(wallet.available_balance.amount)}


async def main() -> None:
    mint, directory, unit = sys.argv[1], sys.argv[2], sys.argv[3]
    wallet = await wallet_for(mint, directory, unit)
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        try:
            answer = await handle(wallet, json.loads(line))
        except Exception as exc:  # the test reads the reason
            answer = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-800:],
            }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
