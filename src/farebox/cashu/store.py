"""Cashu receipts and their ledger side (functions of one transaction).

A receipt goes `swapping` (written before the mint is asked, with the blinding data of our
outputs) -> `received` (the swap's proofs stored, the value credited: `topups -> cashu:<id>`,
code `cashu`, in the same transaction) -> `returned` (change issued: `cashu:<id> -> topups`,
code `cashu_change`, for the whole sats the account still holds once nothing is held on it;
the change proofs leave the vault, the rest are the operator's) -> `melting` -> `melted`.
A swap the mint refused leaves no row. Amounts in sats are the mint's; the ledger sees their
nanodollar value at the rate the receipt was credited at (`nanos_per_sat`), so the change out
is worth exactly what it was worth coming in.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, delete, func, select, update

from farebox.cashu.denominations import pick
from farebox.cashu.tokens import Proof, Token, encode_token
from farebox.db.schema import cashu_receipts
from farebox.ledger import ops as ledger_ops
from farebox.ledger.types import TOPUPS, Code, Transfer

ACCOUNT_KIND = "cashu"
SWAPPING, RECEIVED, RETURNED, MELTING, MELTED = (
    "swapping",
    "received",
    "returned",
    "melting",
    "melted",
)


class Cipher(Protocol):
    def encrypt(self, raw: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


def account_id_for(receipt_id: str) -> str:
    return f"cashu:{receipt_id}"


@dataclass(frozen=True, slots=True)
class Receipt:
    id: str
    account_id: str
    mint_url: str
    unit: str
    endpoint: str
    status: str
    token_sats: int
    fee_sats: int
    sats: int
    nanos_per_sat: int
    value_nanos: int
    created_at: float
    change_sats: int | None
    change_until: float | None
    kept_sats: int | None


def _receipt(row: Any) -> Receipt:
    return Receipt(
        id=row.id,
        account_id=row.account_id,
        mint_url=row.mint_url,
        unit=row.unit,
        endpoint=row.endpoint,
        status=row.status,
        token_sats=int(row.token_sats),
        fee_sats=int(row.fee_sats),
        sats=int(row.sats),
        nanos_per_sat=int(row.nanos_per_sat),
        value_nanos=int(row.value_nanos),
        created_at=float(row.created_at),
        change_sats=None if row.change_sats is None else int(row.change_sats),
        change_until=None if row.change_until is None else float(row.change_until),
        kept_sats=None if row.kept_sats is None else int(row.kept_sats),
    )


def proofs_json(proofs: Sequence[Proof]) -> str:
    return orjson.dumps([p.wire() for p in proofs]).decode()


def proofs_from_json(text: str) -> list[Proof]:
    return [
        Proof(int(p["amount"]), str(p["id"]), str(p["secret"]), str(p["C"]))
        for p in orjson.loads(text)
    ]


def begin(conn: Connection, values: dict[str, Any]) -> None:
    """The receipt before its swap (status swapping; the vault holds our blinded outputs)."""
    conn.execute(cashu_receipts.insert().values(status=SWAPPING, **values))


def forget(conn: Connection, receipt_id: str) -> None:
    """The mint refused the swap: nothing was received."""
    conn.execute(
        delete(cashu_receipts)
        .where(cashu_receipts.c.id == receipt_id)
        .where(cashu_receipts.c.status == SWAPPING)
    )


def received(conn: Connection, receipt_id: str, vault: str, now: float) -> Receipt:
    """Store the swap's proofs and credit their value to the receipt's own account, at once."""
    row = conn.execute(
        select(cashu_receipts).where(cashu_receipts.c.id == receipt_id).with_for_update()
    ).one()
    if row.status != SWAPPING:
        return _receipt(row)
    conn.execute(
        update(cashu_receipts)
        .where(cashu_receipts.c.id == receipt_id)
        .values(status=RECEIVED, vault=vault)
    )
    ledger_ops.create_customer_account(conn, row.account_id, now, kind=ACCOUNT_KIND)
    ledger_ops.transfer(
        conn,
        Transfer(
            f"cashu.{receipt_id}",
            TOPUPS,
            row.account_id,
            int(row.value_nanos),
            Code.CASHU,
            ref=f"cashu:{row.mint_url}"[:128],
        ),
        now,
    )
    return _receipt(
        conn.execute(select(cashu_receipts).where(cashu_receipts.c.id == receipt_id)).one()
    )


def find(conn: Connection, receipt_id: str) -> Receipt | None:
    row = conn.execute(select(cashu_receipts).where(cashu_receipts.c.id == receipt_id)).first()
    return None if row is None else _receipt(row)


@dataclass(frozen=True, slots=True)
class Change:
    """What a receipt's payer gets back. `ready` is False while a request still holds money on
    the receipt's account (a stream, a video job); `token` is None when nothing is left."""

    receipt_id: str
    ready: bool
    sats: int = 0
    token: str | None = None
    until: float | None = None


def issue_change(
    conn: Connection, receipt_id: str, cipher: Cipher, now: float, keep_s: float
) -> Change:
    """Give back the whole sats left on a receipt's account, once (idempotent)."""
    row = conn.execute(
        select(cashu_receipts).where(cashu_receipts.c.id == receipt_id).with_for_update()
    ).first()
    if row is None:
        raise LookupError(receipt_id)
    if row.status in (RETURNED, MELTING, MELTED):
        token = cipher.decrypt(row.change_token) if row.change_token else None
        return Change(receipt_id, True, int(row.change_sats or 0), token, row.change_until)
    if row.status != RECEIVED:
        return Change(receipt_id, False)
    balance = ledger_ops.get_balance(conn, row.account_id)
    if balance is None or balance.reserved > 0:
        return Change(receipt_id, False)
    nanos_per_sat = int(row.nanos_per_sat)
    proofs = proofs_from_json(cipher.decrypt(row.vault))
    change_sats = max(balance.balance, 0) // nanos_per_sat
    amounts = [p.amount for p in proofs]
    chosen = pick(amounts, change_sats)
    while chosen is None:  # not with change-making outputs; else the most that can be made
        change_sats -= 1
        chosen = pick(amounts, change_sats)
    taken = set(chosen)
    change = [proofs[i] for i in chosen]
    kept = [p for i, p in enumerate(proofs) if i not in taken]
    token = None
    if change_sats > 0:
        ledger_ops.transfer(
            conn,
            Transfer(
                f"cashu.change.{receipt_id}",
                row.account_id,
                TOPUPS,
                change_sats * nanos_per_sat,
                Code.CASHU_CHANGE,
                ref=f"cashu:{row.mint_url}"[:128],
            ),
            now,
        )
        token = encode_token(Token(row.mint_url, row.unit, tuple(change)))
    until = now + keep_s
    conn.execute(
        update(cashu_receipts)
        .where(cashu_receipts.c.id == receipt_id)
        .values(
            status=RETURNED,
            vault=cipher.encrypt(proofs_json(kept)),
            change_sats=change_sats,
            change_token=cipher.encrypt(token) if token else None,
            change_until=until,
            kept_sats=sum(p.amount for p in kept),
        )
    )
    return Change(receipt_id, True, change_sats, token, until)


def unreturned(conn: Connection, older_than: float) -> list[str]:
    """Receipts whose change was never issued (a crash mid-request, a payer who never asked)."""
    rows = conn.execute(
        select(cashu_receipts.c.id)
        .where(cashu_receipts.c.status == RECEIVED)
        .where(cashu_receipts.c.created_at < older_than)
    )
    return [r[0] for r in rows]


@dataclass(frozen=True, slots=True)
class Holding:
    """The operator's ecash at one mint, by state, in sats."""

    mint_url: str
    receipts: int
    kept_sats: int  # returned: the operator's, not yet melted
    melting_sats: int
    melted_sats: int
    in_flight_sats: int  # received: a request is running (or its change was never issued)
    swapping: int  # receipts whose swap answer was never stored


def holdings(conn: Connection) -> list[Holding]:
    rows = conn.execute(
        select(
            cashu_receipts.c.mint_url,
            cashu_receipts.c.status,
            func.count(),
            func.coalesce(func.sum(cashu_receipts.c.kept_sats), 0),
            func.coalesce(func.sum(cashu_receipts.c.sats), 0),
        ).group_by(cashu_receipts.c.mint_url, cashu_receipts.c.status)
    ).fetchall()
    by_mint: dict[str, dict[str, tuple[int, int, int]]] = {}
    for mint, status, count, kept, sats in rows:
        by_mint.setdefault(mint, {})[status] = (int(count), int(kept), int(sats))
    out: list[Holding] = []
    for mint, states in sorted(by_mint.items()):

        def get(status: str, field: int, states: dict[str, tuple[int, int, int]] = states) -> int:
            return states.get(status, (0, 0, 0))[field]

        out.append(
            Holding(
                mint_url=mint,
                receipts=sum(v[0] for v in states.values()),
                kept_sats=get(RETURNED, 1),
                melting_sats=get(MELTING, 1),
                melted_sats=get(MELTED, 1),
                in_flight_sats=get(RECEIVED, 2),
                swapping=get(SWAPPING, 0),
            )
        )
    return out


def claim_for_melt(conn: Connection, mint_url: str, limit: int) -> list[tuple[str, str]]:
    """(receipt id, encrypted kept proofs) of returned receipts at a mint, now `melting`."""
    rows = conn.execute(
        select(cashu_receipts.c.id, cashu_receipts.c.vault)
        .where(cashu_receipts.c.mint_url == mint_url)
        .where(cashu_receipts.c.status == RETURNED)
        .where(cashu_receipts.c.kept_sats > 0)
        .order_by(cashu_receipts.c.created_at)
        .limit(limit)
        .with_for_update()
    ).fetchall()
    ids = [r[0] for r in rows]
    if ids:
        conn.execute(
            update(cashu_receipts).where(cashu_receipts.c.id.in_(ids)).values(status=MELTING)
        )
    return [(r[0], r[1]) for r in rows]


def finish_melt(conn: Connection, receipt_ids: Sequence[str], paid: bool, now: float) -> None:
    """Melted (the mint paid the invoice), or back to returned (it did not)."""
    values: dict[str, Any] = {"status": MELTED, "melted_at": now} if paid else {"status": RETURNED}
    conn.execute(
        update(cashu_receipts)
        .where(cashu_receipts.c.id.in_(list(receipt_ids)))
        .where(cashu_receipts.c.status == MELTING)
        .values(**values)
    )


def keep(conn: Connection, mint_url: str, vault: str, sats: int, now: float) -> str:
    """Proofs of the operator's own (a melt's unused fee reserve), kept for the next melt: a
    receipt with no payer and no ledger account."""
    receipt_id = secrets.token_hex(16)
    conn.execute(
        cashu_receipts.insert().values(
            id=receipt_id,
            account_id="",
            mint_url=mint_url,
            unit="sat",
            endpoint="melt change",
            status=RETURNED,
            token_sats=sats,
            fee_sats=0,
            sats=sats,
            nanos_per_sat=0,
            value_nanos=0,
            vault=vault,
            created_at=now,
            change_sats=0,
            kept_sats=sats,
        )
    )
    return receipt_id
