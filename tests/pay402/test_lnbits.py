"""Pay per request with a real Lightning backend: the gateway's invoices come from LNbits
(FakeWallet), and `l402-requests` pays them from another LNbits wallet."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from test_clients import require

from lnbits_support import LNbitsServer, LNbitsWallet
from pay402_support import GENERATIONS, MEDIUM, history, revenue
from support import Gateway


def test_l402_requests_pays_an_lnbits_invoice(
    lnbits_pay_gw: tuple[Gateway, LNbitsWallet], lnbits: LNbitsServer
) -> None:
    gw, gateway_wallet = lnbits_pay_gw
    l402_requests = require("l402_requests", "l402-requests")
    wallets = require("l402_requests.wallets", "l402-requests")
    payer = lnbits.create_wallet("pay402-payer")
    lnbits.fund(payer, 10_000)

    class LNbitsPayer(wallets.WalletBase):  # type: ignore[misc,name-defined]
        """l402-requests' wallet port on an LNbits wallet's admin key."""

        def pay_invoice_sync(self, bolt11: str) -> str:
            paid: dict[str, Any] = lnbits.pay(payer, bolt11)
            return str(paid.get("preimage") or paid["payment_preimage"])

        async def pay_invoice(self, bolt11: str) -> str:
            return await asyncio.to_thread(self.pay_invoice_sync, bolt11)

    received = lnbits.balance_msat(gateway_wallet)
    before = revenue(gw)
    client = l402_requests.L402Client(wallet=LNbitsPayer(), timeout=30)
    r = client.post(gw.url + GENERATIONS, json=MEDIUM)
    assert r.status_code == 200, r.text
    assert lnbits.balance_msat(gateway_wallet) - received == 40_000  # 40 sats arrived
    assert revenue(gw) - before == 40_000_000
    preimages = [record.preimage for record in client.spending_log.records if record.success]
    assert len(preimages) == 1
    payment_hash = hashlib.sha256(bytes.fromhex(preimages[0])).hexdigest()
    assert history(gw, payment_hash) == [("l402", "image", "sim-image", 40_000_000)]
