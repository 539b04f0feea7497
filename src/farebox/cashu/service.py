"""Cashu per request (NUT-24): the 402's `X-Cashu: creqA…`, and redeeming `X-Cashu: cashuB…`.

Redeeming one token, before the request is served (never after):
1. Decode it within bounds; its mint must be one the operator trusts (compared before any
   request is made: only configured URLs are ever called), its unit `sat`, its keysets that
   mint's `sat` keysets (short ids expanded from the mint's list).
2. Price it: the mint's input fee comes off; what is left must pay for the request at the current
   rate (whole sats, rounded up). Too small, wrong unit, untrusted mint: 400, nothing changes.
3. Write the receipt with the blinding data of farebox's outputs (amounts that can make any
   change, denominations.py), then swap at the mint: the payer's proofs for ours. A refusal
   (double spend: the mint's code 11001) deletes the receipt and is a 400.
4. Store our proofs encrypted and credit their value to the receipt's own ledger account, in one
   transaction. The request is then held and charged from that account like any other.
After the request, `settled_change` gives back the whole sats the account still holds as a
cashuB token of our proofs (no second mint call), stored encrypted under the receipt's id for
`change_keep_s` so a payer whose connection dropped can fetch it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import orjson

from farebox import optional
from farebox.cashu import store
from farebox.cashu.config import UNIT, CashuConfig
from farebox.cashu.crypto import Blinded, blind
from farebox.cashu.denominations import change_making_split
from farebox.cashu.errors import CashuMintUnavailable, CashuRejected
from farebox.cashu.mint import TOKEN_ALREADY_SPENT, Keyset, MintClient, MintRefused, MintUnavailable
from farebox.cashu.store import Change, Cipher, Receipt
from farebox.cashu.tokens import Proof, Token, TokenError, decode_token, encode_payment_request
from farebox.db.database import Database
from farebox.ledger.service import Ledger
from farebox.money import format_usd
from farebox.pay402.types import Offer
from farebox.payments.config import PaymentsConfig
from farebox.payments.rates import RateSource

log = logging.getLogger("farebox.cashu")

CHANGE_WAIT_S = 2.0  # how long a response waits for its request's settlement before its change


def nanos_per_sat(btc_usd: Decimal) -> int:
    """A sat's value in nanodollars at this rate, rounded down (1 BTC = 1e8 sats, 1 USD = 1e9)."""
    return max(1, int((btc_usd * 10).to_integral_value(rounding=ROUND_FLOOR)))


def sats_for(price_nanos: int, per_sat: int) -> int:
    return max(1, -(-price_nanos // per_sat))


class CashuPayments:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        rates: RateSource,
        config: CashuConfig,
        cipher: Cipher,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.rates = rates
        self.config = config
        self.cipher = cipher
        self.mints = {url: MintClient(url, config.mint_timeout_s) for url in config.mints}
        if self.mints:  # ecash is taken: its libraries are loaded before any request needs them
            optional.cbor2()
            optional.coincurve()
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.mints)

    async def _per_sat(self) -> int:
        return nanos_per_sat(await self.rates.btc_usd())

    # -- the 402 ----------------------------------------------------------------------------

    async def payment_request(self, offer: Offer) -> tuple[str, dict[str, Any]]:
        """The X-Cashu header value (NUT-18 creqA: amount, unit, trusted mints) and its echo
        for the 402's JSON body."""
        sats = sats_for(offer.price_nanos, await self._per_sat())
        mints = list(self.mints)
        creq = encode_payment_request(sats, UNIT, mints, offer.description)
        return creq, {"request": creq, "amount": sats, "unit": UNIT, "mints": mints}

    # -- redeeming ---------------------------------------------------------------------------

    async def redeem(self, raw: str, offer: Offer) -> Receipt:
        """Swap a token's proofs for ours and credit them; raises CashuRejected (400) for a
        token that buys nothing, CashuMintUnavailable (502) when the mint does not answer."""
        try:
            token = decode_token(raw)
        except TokenError as exc:
            raise CashuRejected("cashu_malformed_token", f"Bad X-Cashu token: {exc}.") from None
        client = self.mints.get(token.mint)
        if client is None:
            raise CashuRejected(
                "cashu_mint_not_accepted",
                f"This server does not accept ecash from {token.mint[:80]}; it takes tokens "
                f"from: {', '.join(self.mints)}.",
                mints=list(self.mints),
            )
        if token.unit != UNIT:
            raise CashuRejected(
                "cashu_wrong_unit", f"Send a token in {UNIT}, not {token.unit[:16]!r}."
            )
        proofs, fee = await self._resolve(client, token)
        per_sat = await self._per_sat()
        needed = sats_for(offer.price_nanos, per_sat)
        sats = token.amount - fee
        if sats < needed:
            fee_note = f" after the mint's input fee of {fee} sats" if fee else ""
            raise CashuRejected(
                "cashu_amount_insufficient",
                f"This token is worth {sats} sats{fee_note}; {offer.description} costs "
                f"${format_usd(offer.price_nanos)} ({needed} sats). Nothing was taken.",
                amount=needed,
            )
        return await self._swap(client, token, proofs, fee, sats, per_sat, offer)

    async def _resolve(self, client: MintClient, token: Token) -> tuple[list[Proof], int]:
        """Proofs with full keyset ids, and the swap's input fee (NUT-02)."""
        keysets = await self._keysets(client)
        found: dict[str, Keyset] = {}
        for fresh in (False, True):
            if fresh:
                keysets = await self._keysets(client, fresh=True)
            missing = False
            for proof in token.proofs:
                matches = [k for k in keysets if k.id.startswith(proof.keyset_id.lower())]
                if len(matches) > 1:
                    raise CashuRejected(
                        "cashu_malformed_token", "A short keyset id in the token is ambiguous."
                    )
                if not matches:
                    missing = True
                    break
                found[proof.keyset_id] = matches[0]
            if not missing:
                break
        else:
            raise CashuRejected(
                "cashu_malformed_token", f"The token names a keyset {token.mint} does not have."
            )
        if any(found[p.keyset_id].unit != UNIT for p in token.proofs):
            raise CashuRejected("cashu_wrong_unit", f"The token's keysets are not in {UNIT}.")
        proofs = [
            Proof(p.amount, found[p.keyset_id].id, p.secret, p.C, p.witness) for p in token.proofs
        ]
        fee_ppk = sum(found[p.keyset_id].input_fee_ppk for p in token.proofs)
        return proofs, (fee_ppk + 999) // 1000

    async def _keysets(self, client: MintClient, fresh: bool = False) -> list[Keyset]:
        try:
            return await client.keysets(fresh=fresh)
        except (MintRefused, MintUnavailable) as exc:
            raise CashuMintUnavailable(
                f"The mint did not answer ({exc.message}); your token was not spent. Try again."
            ) from None

    async def _swap(
        self,
        client: MintClient,
        token: Token,
        proofs: list[Proof],
        fee: int,
        sats: int,
        per_sat: int,
        offer: Offer,
    ) -> Receipt:
        keysets = await self._keysets(client)
        active = next((k for k in keysets if k.active and k.unit == UNIT), None)
        if active is None:
            raise CashuMintUnavailable("The mint has no active sat keyset to swap into.")
        try:
            keys = await client.keys(active.id)
        except (MintRefused, MintUnavailable) as exc:
            raise CashuMintUnavailable(
                f"The mint did not answer ({exc.message}); your token was not spent."
            ) from None
        amounts = change_making_split(sats)
        if any(a not in keys for a in amounts):
            raise CashuMintUnavailable("The mint's keyset cannot sign the amounts needed.")
        outputs = [blind(amount, active.id) for amount in amounts]
        receipt_id = secrets.token_hex(16)
        now = time.time()
        await self.db.write(
            store.begin,
            {
                "id": receipt_id,
                "account_id": store.account_id_for(receipt_id),
                "mint_url": token.mint,
                "unit": UNIT,
                "endpoint": offer.endpoint,
                "token_sats": token.amount,
                "fee_sats": fee,
                "sats": sats,
                "nanos_per_sat": per_sat,
                "value_nanos": sats * per_sat,
                "vault": self.cipher.encrypt(_outputs_json(outputs)),
                "created_at": now,
            },
        )
        try:
            signatures = await client.swap(
                [p.wire() for p in proofs],
                [{"amount": o.amount, "id": o.keyset_id, "B_": o.B_} for o in outputs],
            )
        except MintRefused as exc:
            await self.db.write(store.forget, receipt_id)
            if exc.code == TOKEN_ALREADY_SPENT:
                raise CashuRejected(
                    "cashu_token_spent",
                    "The mint says this token is already spent: it was redeemed before "
                    "(here or elsewhere). Nothing was charged.",
                ) from None
            raise CashuRejected(
                "cashu_token_refused", f"The mint refused this token: {exc.message}."
            ) from None
        except MintUnavailable as exc:
            log.error("cashu swap %s at %s has no answer: %s", receipt_id, token.mint, exc)
            raise CashuMintUnavailable(
                "The mint did not answer the swap; if it spent your token, the operator can "
                f"restore it (receipt {receipt_id})."
            ) from None
        ours = [
            Proof(o.amount, o.keyset_id, o.secret, o.unblind(sig["C_"], keys[o.amount]))
            for o, sig in zip(outputs, signatures, strict=True)
        ]
        receipt = await self.db.write(
            store.received, receipt_id, self.cipher.encrypt(store.proofs_json(ours)), time.time()
        )
        log.info(
            "cashu %s: %d sats from %s (fee %d) for %s",
            receipt_id,
            sats,
            token.mint,
            fee,
            offer.endpoint,
        )
        return receipt

    # -- change ------------------------------------------------------------------------------

    async def change(self, receipt_id: str) -> Change:
        """The change of a finished request (issued now if it was not yet); not ready while a
        request still holds money on the receipt."""
        await self.ledger.flush()
        return await self.db.write(
            store.issue_change, receipt_id, self.cipher, time.time(), self.config.change_keep_s
        )

    async def settled_change(self, receipt_id: str, wait_s: float = CHANGE_WAIT_S) -> Change:
        """After a request: its change once its settlement has committed (a stream may settle
        a moment after its last byte); not ready if that takes longer than `wait_s`."""
        deadline = time.monotonic() + wait_s
        while True:
            change = await self.change(receipt_id)
            if change.ready or time.monotonic() >= deadline:
                return change
            await asyncio.sleep(0.02)

    def change_soon(self, receipt_id: str) -> None:
        """Issue change in the background (the client has gone: it fetches it by id later)."""
        task = asyncio.get_running_loop().create_task(self.settled_change(receipt_id, 30.0))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def find(self, receipt_id: str) -> Receipt | None:
        return await self.db.read(store.find, receipt_id)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for client in self.mints.values():
            await client.close()


def _outputs_json(outputs: list[Blinded]) -> str:
    """What restoring a lost swap answer needs (NUT-09): amounts, keyset, secrets, factors."""
    return orjson.dumps(
        {
            "outputs": [
                {
                    "amount": o.amount,
                    "id": o.keyset_id,
                    "secret": o.secret,
                    "r": o.r.hex(),
                    "B_": o.B_,
                }
                for o in outputs
            ]
        }
    ).decode()


def change_headers(change: Change) -> Mapping[str, str]:
    """`X-Cashu: <change token>` (bearer money: never stored by a cache) and the id it can be
    fetched by again."""
    headers = {"x-cashu-change-id": change.receipt_id, "cache-control": "no-store"}
    if change.token:
        headers["x-cashu"] = change.token
    return headers


def build_cashu(
    env: Mapping[str, str], db: Database, ledger: Ledger, rates: RateSource, cipher: Cipher
) -> CashuPayments:
    """From FAREBOX_CASHU_*. Ecash is priced at the rate top-ups use, so trusted mints need a
    real one: FAREBOX_TOPUP_RATES or an LNbits/BTCPay backend's (the demo rate only serves the
    dev wallet)."""
    config = CashuConfig.from_env(env)
    payments = PaymentsConfig.from_env(env)
    real_rates = payments.fixed_rates or payments.btcpay_url or payments.lnbits_url
    if config.mints and not (real_rates or payments.dev_wallet):
        raise ValueError(
            "FAREBOX_CASHU_MINTS needs a BTC/USD rate: set FAREBOX_TOPUP_RATES or connect an "
            "LNbits or BTCPay backend"
        )
    return CashuPayments(db, ledger, rates, config, cipher)
