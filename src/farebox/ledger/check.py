"""`farebox ledger check`: prove the ledger's invariants from its own rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, func, select

from farebox.db.schema import accounts, api_keys, cashu_receipts, holds, queries, transfers
from farebox.ledger.losses import LossTotals, loss_totals
from farebox.ledger.types import (
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    PENDING,
    POST_PENDING,
    VOID_PENDING,
)


@dataclass
class CheckReport:
    accounts: int = 0
    transfers: int = 0
    problems: list[str] = field(default_factory=list)
    # What upstreams reported beyond what their customers were charged (ledger/losses.py): the
    # operator's, not a fault of the ledger, which never posts more than a request held.
    losses: LossTotals = field(default_factory=LossTotals)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(conn: Connection) -> CheckReport:
    report = CheckReport()
    acct_rows = conn.execute(select(accounts)).fetchall()
    report.accounts = len(acct_rows)
    # Rebuild every balance from the transfers.
    derived: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # dp, dP, cp, cP
    pending: dict[str, tuple[str, str, int]] = {}
    resolved: dict[str, int] = defaultdict(int)
    # (id, pending id, debit account, credit account, amount, flags) of every post and void
    resolutions: list[tuple[str, str, str, str, int, int]] = []
    posted_by_key: dict[str, int] = defaultdict(int)
    query_posted: dict[str, int] = defaultdict(int)
    ecash: dict[str, int] = {}  # Cashu money in and change out, by transfer id
    for t in conn.execute(select(transfers)).yield_per(5000):
        report.transfers += 1
        amount = int(t.amount)
        if amount < 0:
            report.problems.append(f"transfer {t.id} has a negative amount")
        if t.flags & PENDING:
            pending[t.id] = (t.debit_account_id, t.credit_account_id, amount)
            continue
        if t.flags & (POST_PENDING | VOID_PENDING):
            resolved[t.pending_id] += 1
            resolutions.append(
                (t.id, t.pending_id, t.debit_account_id, t.credit_account_id, amount, t.flags)
            )
            if t.flags & VOID_PENDING:
                continue
        derived[t.debit_account_id][1] += amount
        derived[t.credit_account_id][3] += amount
        if t.key_id is not None:
            posted_by_key[t.key_id] += amount
        if t.code == "query":
            query_posted[t.debit_account_id] += amount
        elif t.code in ("cashu", "cashu_change"):
            ecash[t.id] = amount
    open_holds = {r.transfer_id: r for r in conn.execute(select(holds)).fetchall()}
    for pid, (debit, credit, amount) in pending.items():
        n = resolved.get(pid, 0) + (1 if pid in open_holds else 0)
        if n != 1:
            report.problems.append(
                f"pending transfer {pid} is resolved {resolved.get(pid, 0)} times and "
                f"{'is' if pid in open_holds else 'is not'} open: it must be exactly one of the two"
            )
        if pid in open_holds:
            if int(open_holds[pid].amount) != amount:
                report.problems.append(f"hold {pid} amount differs from its pending transfer")
            derived[debit][0] += amount
            derived[credit][2] += amount
    for pid in resolved:
        if pid not in pending:
            report.problems.append(f"a post or void names {pid}, which is not a pending transfer")
    # A post may take less than was held, never more, and only between the hold's accounts.
    for tid, pid, debit, credit, amount, flags in resolutions:
        if pid not in pending:
            continue
        held_debit, held_credit, held = pending[pid]
        if (debit, credit) != (held_debit, held_credit):
            report.problems.append(
                f"transfer {tid} resolves {pid} between other accounts than its hold's"
            )
        if flags & POST_PENDING and amount > held:
            report.problems.append(
                f"transfer {tid} posts {amount}, more than the {held} held by {pid}"
            )
    for tid in open_holds:
        if tid not in pending:
            report.problems.append(f"open hold {tid} has no pending transfer")
    totals = [0, 0, 0, 0]
    for a in acct_rows:
        stored = [
            int(a.debits_pending),
            int(a.debits_posted),
            int(a.credits_pending),
            int(a.credits_posted),
        ]
        for i in range(4):
            totals[i] += stored[i]
        if stored != derived.get(a.id, [0, 0, 0, 0]):
            report.problems.append(
                f"account {a.id} balances {stored} (debits pending/posted, credits "
                f"pending/posted) differ from the sum of its transfers {derived.get(a.id)}"
            )
        if a.flags & DEBITS_MUST_NOT_EXCEED_CREDITS and stored[0] + stored[1] > stored[3]:
            report.problems.append(
                f"account {a.id} has debits ({stored[0] + stored[1]}) exceeding credits "
                f"({stored[3]}): its balance went below zero"
            )
    known = {a.id for a in acct_rows}
    for account_id in derived:
        if account_id not in known:
            report.problems.append(f"transfers name account {account_id}, which does not exist")
    if totals[1] != totals[3]:
        report.problems.append(f"sum of debits posted {totals[1]} != credits posted {totals[3]}")
    if totals[0] != totals[2]:
        report.problems.append(f"sum of debits pending {totals[0]} != credits pending {totals[2]}")
    _check_keys(conn, report, posted_by_key, open_holds)
    _check_history(conn, report, query_posted)
    _check_ecash(conn, report, ecash)
    report.losses = loss_totals(conn)
    return report


def _check_keys(
    conn: Connection,
    report: CheckReport,
    posted_by_key: dict[str, int],
    open_holds: dict[str, Row[Any]],
) -> None:
    pending_by_key: dict[str, int] = defaultdict(int)
    for h in open_holds.values():
        if h.key_id is not None:
            pending_by_key[h.key_id] += int(h.amount)
    for k in conn.execute(
        select(api_keys.c.id, api_keys.c.total_posted, api_keys.c.period_pending)
    ).fetchall():
        if int(k.total_posted) != posted_by_key.get(k.id, 0):
            report.problems.append(
                f"key {k.id} total usage {k.total_posted} differs from its posted transfers "
                f"{posted_by_key.get(k.id, 0)}"
            )
        if int(k.period_pending) != pending_by_key.get(k.id, 0):
            report.problems.append(
                f"key {k.id} reserved {k.period_pending} differs from its open holds "
                f"{pending_by_key.get(k.id, 0)}"
            )


def _check_history(conn: Connection, report: CheckReport, query_posted: dict[str, int]) -> None:
    rows = conn.execute(
        select(queries.c.account_id, func.sum(queries.c.price)).group_by(queries.c.account_id)
    ).fetchall()
    history = {r[0]: int(r[1] or 0) for r in rows}
    for account_id in set(history) | set(query_posted):
        if history.get(account_id, 0) != query_posted.get(account_id, 0):
            report.problems.append(
                f"account {account_id}: query history totals {history.get(account_id, 0)} but "
                f"query transfers posted {query_posted.get(account_id, 0)}"
            )


def _check_ecash(conn: Connection, report: CheckReport, ecash: dict[str, int]) -> None:
    """Every Cashu receipt credited what it received and paid back what its change is worth,
    at its own rate; a swap in progress moved no money; no ecash transfer lacks its receipt."""
    seen: set[str] = set()
    for r in conn.execute(select(cashu_receipts)).fetchall():
        if not r.account_id:
            continue  # the operator's own proofs (a melt's fee change): never on the ledger
        money_in, change = f"cashu.{r.id}", f"cashu.change.{r.id}"
        seen.update((money_in, change))
        expected_in = 0 if r.status == "swapping" else int(r.value_nanos)
        expected_out = int(r.change_sats or 0) * int(r.nanos_per_sat)
        if ecash.get(money_in, 0) != expected_in or ecash.get(change, 0) != expected_out:
            report.problems.append(
                f"cashu receipt {r.id} ({r.status}) should have credited {expected_in} and paid "
                f"back {expected_out}; its transfers say {ecash.get(money_in, 0)} and "
                f"{ecash.get(change, 0)}"
            )
    for transfer_id in ecash.keys() - seen:
        report.problems.append(f"ecash transfer {transfer_id} has no cashu receipt")
