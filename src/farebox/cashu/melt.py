"""Melting the operator's ecash to its Lightning backend (NUT-05), for `farebox admin cashu melt`.

Ecash is a claim on its mint; melting turns it into sats the operator's own wallet holds. For one
mint: the receipts whose change has been issued are claimed (`melting`), their kept proofs
decrypted, and the Lightning backend that serves top-ups (LNbits, BTCPay, the dev wallet) issues
an invoice for what they are worth less the mint's input fee and its Lightning fee reserve; the
mint pays it with the proofs. Blank outputs (NUT-08) bring back the part of the reserve the
payment did not use, as new proofs kept in a receipt of their own. Paid: the receipts are
`melted`; refused: back to `returned` for a later try; pending: left `melting` (listed).
The ledger is not touched: this moves the operator's money between the operator's wallets.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from farebox.cashu import store
from farebox.cashu.config import UNIT
from farebox.cashu.crypto import blind
from farebox.cashu.mint import MintClient, MintError
from farebox.cashu.store import Cipher
from farebox.cashu.tokens import Proof
from farebox.db.database import Database
from farebox.payments.amounts import SATS_PER_BTC
from farebox.payments.types import Currency, InvoiceRequest, Method, PaymentBackend

MAX_RECEIPTS = 500  # per melt: a few thousand proofs at most in one request to the mint
QUOTE_TRIES = 4


@dataclass(frozen=True, slots=True)
class Melted:
    mint_url: str
    receipts: int
    sats: int  # the proofs melted
    invoice_sats: int  # what the Lightning backend was paid
    fee_sats: int  # what the mint kept (input fee and Lightning fee)
    state: str  # PAID | UNPAID | PENDING | NOTHING
    detail: str = ""


async def settle_stale_change(db: Database, cipher: Cipher, keep_s: float, older_s: float) -> int:
    """Issue the change of receipts whose request ended long ago without it (the process died
    mid-request, then the sweeper resolved its holds): the payer can still fetch it by id, and
    the rest becomes the operator's to melt. Receipts with money still held are left alone."""
    now = time.time()
    issued = 0
    for receipt_id in await db.read(store.unreturned, now - older_s):
        change = await db.write(store.issue_change, receipt_id, cipher, now, keep_s)
        issued += change.ready
    return issued


async def melt_mint(
    db: Database, cipher: Cipher, client: MintClient, backend: PaymentBackend
) -> Melted:
    claimed = await db.write(store.claim_for_melt, client.url, MAX_RECEIPTS)
    if not claimed:
        return Melted(client.url, 0, 0, 0, 0, "NOTHING", "no ecash to melt at this mint")
    ids = [receipt_id for receipt_id, _vault in claimed]
    proofs = [p for _id, vault in claimed for p in store.proofs_from_json(cipher.decrypt(vault))]
    total = sum(p.amount for p in proofs)
    try:
        result = await _melt(db, cipher, client, backend, proofs, total, len(ids))
    except BaseException:
        await db.write(store.finish_melt, ids, False, time.time())
        raise
    if result.state != "PENDING":
        await db.write(store.finish_melt, ids, result.state == "PAID", time.time())
    return result


async def _melt(
    db: Database,
    cipher: Cipher,
    client: MintClient,
    backend: PaymentBackend,
    proofs: list[Proof],
    total: int,
    receipts: int,
) -> Melted:
    keysets = {k.id: k for k in await client.keysets(fresh=True)}
    input_fee = (
        sum(keysets[p.keyset_id].input_fee_ppk for p in proofs if p.keyset_id in keysets) + 999
    ) // 1000
    budget = total - input_fee
    amount, quote = budget, None
    for _ in range(QUOTE_TRIES):
        if amount <= 0:
            return Melted(client.url, receipts, total, 0, 0, "UNPAID", "too little to pay fees")
        invoice = await backend.create_invoice(
            InvoiceRequest(
                reference="cashu_melt_" + secrets.token_hex(8),
                method=Method.LIGHTNING,
                amount=Decimal(amount) / SATS_PER_BTC,
                currency=Currency.BTC,
                sats=amount,
                expiry_s=600,
                memo=f"farebox: ecash melted from {client.url}"[:200],
            )
        )
        if not invoice.bolt11:
            return Melted(client.url, receipts, total, 0, 0, "UNPAID", "no BOLT11 invoice")
        quote = await client.melt_quote(invoice.bolt11, UNIT)
        need = int(quote["amount"]) + int(quote.get("fee_reserve") or 0)
        if need <= budget:
            break
        amount -= need - budget
    else:
        return Melted(client.url, receipts, total, 0, 0, "UNPAID", "the fee reserve kept growing")
    assert quote is not None
    reserve = int(quote.get("fee_reserve") or 0)
    active = next((k for k in keysets.values() if k.active and k.unit == UNIT), None)
    blanks = []
    if active is not None and budget - amount > 0:
        count = max(1, math.ceil(math.log2(budget - amount + 1)))
        blanks = [blind(1, active.id) for _ in range(count)]
    answer = await client.melt(
        str(quote["quote"]),
        [p.wire() for p in proofs],
        [{"amount": 1, "id": b.keyset_id, "B_": b.B_} for b in blanks],
    )
    state = str(answer.get("state") or ("PAID" if answer.get("paid") else "UNPAID")).upper()
    returned = 0
    if state == "PAID" and blanks and active is not None:
        returned = await _keep_fee_change(db, cipher, client, blanks, answer.get("change"))
    kept_by_mint = budget - amount - returned + input_fee if state == "PAID" else 0
    detail = f"fee reserve {reserve} sats, {returned} sats of it back" if state == "PAID" else ""
    return Melted(client.url, receipts, total, amount, kept_by_mint, state, detail)


async def _keep_fee_change(
    db: Database, cipher: Cipher, client: MintClient, blanks: list[Any], change: Any
) -> int:
    """Unblind the mint's NUT-08 change into proofs, kept as a receipt of the operator's own."""
    if not isinstance(change, list) or not change:
        return 0
    proofs: list[Proof] = []
    for blank, sig in zip(blanks, change, strict=False):
        try:
            keys = await client.keys(str(sig["id"]).lower())
            amount = int(sig["amount"])
            proofs.append(
                Proof(amount, blank.keyset_id, blank.secret, blank.unblind(sig["C_"], keys[amount]))
            )
        except (KeyError, TypeError, ValueError, MintError):
            continue
    sats = sum(p.amount for p in proofs)
    if sats:
        await db.write(
            store.keep, client.url, cipher.encrypt(store.proofs_json(proofs)), sats, time.time()
        )
    return sats
