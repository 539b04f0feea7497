"""Property tests of the ledger's invariants (hypothesis, stateful), on real SQLite and PostgreSQL.

Random sequences of: customer accounts, grants (with replays of the same id, and conflicting
replays), holds with random want/minimum with and without key budgets and limits, extensions
that record delivered usage, settlements posting anything from 0 to above what was held (and
settling twice), clock advances, sweeps, a settle racing a sweep of the same request on two
threads, key period roll-overs and revocations, and direct debits that may overdraw.

After every step the rows must satisfy the invariants (no customer below zero; debits = credits,
posted and pending; every account the sum of its transfers; each pending transfer resolved at
most once; key counters within their limits; `check_ledger` ok) and equal an in-Python model of
what every balance, key counter, open hold and history row should be.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from ledger_support import T0, add_key, audit, uid, wipe
from sqlalchemy import Connection, select, update

from farebox.db.database import Database
from farebox.db.schema import accounts, api_keys, holds, queries
from farebox.errors import Conflict, InsufficientFunds
from farebox.ledger import ops, sweep, tick
from farebox.ledger.check import check_ledger
from farebox.ledger.types import (
    GRANTS,
    REVENUE,
    SYSTEM_ACCOUNTS,
    Code,
    HoldRequest,
    HoldResult,
    KeyBudget,
    QueryRecord,
    Refusal,
    Settlement,
    SettleResult,
    Transfer,
)

RECOVERY = sweep.encode_recovery(QueryRecord(model="m", input_count=1, output_count=2))
QUERY = QueryRecord(model="m", input_count=3, output_count=4)

SETTINGS = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class MHold:
    tid: str
    seq: int
    amount: int
    expires: float
    recovery: str | None
    recorded: int = 0
    open: bool = True
    posted: int = 0  # what its resolution posted


@dataclass
class MRequest:
    rid: str
    account: str
    key: str | None
    holds: list[MHold] = field(default_factory=list)
    settled: int = 0  # settlements submitted by the "process"


@dataclass
class MKey:
    account: str
    limit: int | None
    period: str = "p0"  # the period the caller is in now
    period_key: str = ""  # the row's counter period
    posted: int = 0
    pending: int = 0
    total: int = 0
    revoked: bool = False


class Model:
    """What the ledger's rows should say: balances [dp, dP, cp, cP], keys, holds, history."""

    def __init__(self) -> None:
        self.accounts: dict[str, list[int]] = {a: [0, 0, 0, 0] for a in SYSTEM_ACCOUNTS}
        self.keys: dict[str, MKey] = {}
        self.requests: dict[str, MRequest] = {}
        self.history: dict[str, int] = {}
        self.grants: dict[str, tuple[str, int]] = {}

    def available(self, account: str) -> int:
        dp, dP, _, cP = self.accounts[account]
        return cP - dP - dp

    def post(self, debit: str, credit: str, amount: int) -> None:
        self.accounts[debit][1] += amount
        self.accounts[credit][3] += amount

    def hold(self, req: HoldRequest, key: MKey | None) -> tuple[int, Refusal | None, int | None]:
        """(held, refusal, key_remaining), and the rows it changes."""
        amount = req.want
        if self.available(req.account_id) < amount:
            amount = min(req.want, self.available(req.account_id))
            if amount < req.minimum or amount <= 0:
                return 0, Refusal.FUNDS, None
        if key is not None:
            assert req.key is not None
            posted = key.posted if key.period_key == req.key.period_key else 0
            fits = key.limit is None or posted + key.pending + amount <= key.limit
            if key.revoked:
                return 0, Refusal.KEY_INVALID, 0
            if not fits:
                assert key.limit is not None
                remaining = max(0, key.limit - posted - key.pending)
                if min(amount, remaining) < req.minimum or min(amount, remaining) <= 0:
                    return 0, Refusal.KEY_LIMIT, remaining
                amount = min(amount, remaining)
            key.posted = posted
            key.period_key = req.key.period_key
            key.pending += amount
        self.accounts[req.account_id][0] += amount
        self.accounts[REVENUE][2] += amount
        r = self.requests.setdefault(
            req.request_id,
            MRequest(req.request_id, req.account_id, req.key.key_id if req.key else None),
        )
        r.holds.append(MHold(req.transfer_id, req.seq, amount, req.timeout_at, req.recovery))
        if req.seq > 0:
            for h in r.holds:
                if h.open:
                    h.expires = req.timeout_at
            first = r.holds[0]
            if req.recorded is not None and first.seq == 0 and first.open:
                first.recorded = req.recorded
                first.recovery = req.recovery
        return amount, None, None

    def settle(
        self, r: MRequest, names: list[MHold], actual: int, query: bool
    ) -> tuple[int, int, list[str]]:
        """Mirror of settle_batch for one settlement naming `names`: (posted, lost, swept)."""
        swept = [h for h in names if not h.open]
        actual = actual if query else 0  # money is only charged together with its history row
        remaining = max(0, actual - sum(h.posted for h in swept))
        posted = 0
        for h in names:
            if not h.open:
                continue
            take = min(remaining, h.amount)
            remaining -= take
            posted += take
            h.open = False
            h.posted = take
            self.accounts[r.account][0] -= h.amount
            self.accounts[r.account][1] += take
            self.accounts[REVENUE][2] -= h.amount
            self.accounts[REVENUE][3] += take
            if r.key is not None:
                k = self.keys[r.key]
                k.pending -= h.amount
                k.posted += take
                k.total += take
        if query and (posted > 0 or not swept):
            self.history[r.rid] = self.history.get(r.rid, 0) + posted
        return posted, remaining, [h.tid for h in swept]

    def expired(self, now: float) -> list[MRequest]:
        return [
            r for r in self.requests.values() if any(h.open and h.expires < now for h in r.holds)
        ]

    def sweep(self, now: float) -> int:
        done = self.expired(now)
        for r in done:
            rows = [h for h in r.holds if h.open]
            recorded = max(h.recorded for h in rows)
            recovery = next((h.recovery for h in rows if h.recovery), None)
            self.settle(r, rows, recorded if recovery else 0, recovery is not None)
        return len(done)


def read_state(conn: Connection) -> dict[str, Any]:
    """Everything the model is compared with, and the invariant checks, in one transaction."""
    return {
        "accounts": {
            r.id: [
                int(r.debits_pending),
                int(r.debits_posted),
                int(r.credits_pending),
                int(r.credits_posted),
            ]
            for r in conn.execute(select(accounts))
        },
        "keys": {
            r.id: (r.period_key, int(r.period_posted), int(r.period_pending), int(r.total_posted))
            for r in conn.execute(select(api_keys))
        },
        "holds": {
            r.transfer_id: (int(r.amount), float(r.expires_at), int(r.recorded), r.recovery)
            for r in conn.execute(select(holds))
        },
        "history": {r.request_id: int(r.price) for r in conn.execute(select(queries))},
        "audit": audit(conn),
        "check": check_ledger(conn).problems,
    }


class LedgerMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    keys = Bundle("keys")
    requests = Bundle("requests")

    def __init__(self, db: Database, pool: ThreadPoolExecutor) -> None:
        super().__init__()
        self.db = db
        self.pool = pool
        self.now = T0
        self.m = Model()
        db.write_sync(wipe)

    # -- accounts and money in ------------------------------------------------------------------

    @rule(target=accounts, initial=st.integers(0, 600))
    def create_account(self, initial: int) -> str:
        account_id = uid("a-")
        self.db.write_sync(ops.create_customer_account, account_id, self.now)
        self.m.accounts[account_id] = [0, 0, 0, 0]
        if initial:
            self.grant(account_id, initial, replay=None)
        return account_id

    @rule(
        account=accounts,
        amount=st.integers(1, 300),
        replay=st.none() | st.tuples(st.integers(0, 10**6), st.booleans()),
    )
    def grant(self, account: str, amount: int, replay: tuple[int, bool] | None) -> None:
        if replay is not None and self.m.grants:
            gid = sorted(self.m.grants)[replay[0] % len(self.m.grants)]
            acct, amt = self.m.grants[gid]
            if replay[1]:  # the same transfer again: applied once
                t = Transfer(gid, GRANTS, acct, amt, Code.GRANT)
                assert self.db.write_sync(ops.transfer, t, self.now) is False
            else:  # the same id with another amount: refused, nothing written
                t = Transfer(gid, GRANTS, acct, amt + 1, Code.GRANT)
                with pytest.raises(Conflict):
                    self.db.write_sync(ops.transfer, t, self.now)
            return
        gid = uid("g-")
        t = Transfer(gid, GRANTS, account, amount, Code.GRANT)
        assert self.db.write_sync(ops.transfer, t, self.now) is True
        self.m.grants[gid] = (account, amount)
        self.m.post(GRANTS, account, amount)

    @rule(account=accounts, delta=st.integers(-40, 40))
    def debit(self, account: str, delta: int) -> None:
        """A direct debit (adjustment) of about what is available: overdrafts are refused."""
        amount = max(1, self.m.available(account) + delta)
        t = Transfer(uid("adj-"), account, REVENUE, amount, Code.ADJUST)
        if amount > self.m.available(account):
            with pytest.raises(InsufficientFunds):
                self.db.write_sync(ops.transfer, t, self.now)
        else:
            assert self.db.write_sync(ops.transfer, t, self.now) is True
            self.m.post(account, REVENUE, amount)

    # -- keys -----------------------------------------------------------------------------------

    @rule(target=keys, account=accounts, limit=st.none() | st.integers(1, 400))
    def add_key(self, account: str, limit: int | None) -> str:
        key_id = self.db.write_sync(add_key, account, limit)
        self.m.keys[key_id] = MKey(account, limit)
        return key_id

    @rule(key=keys)
    def roll_period(self, key: str) -> None:
        k = self.m.keys[key]
        k.period = f"p{int(k.period[1:]) + 1}"

    @rule(key=keys)
    def revoke(self, key: str) -> None:
        self.db.write_sync(
            lambda c: c.execute(update(api_keys).where(api_keys.c.id == key).values(revoked_at=1.0))
        )
        self.m.keys[key].revoked = True

    # -- requests -------------------------------------------------------------------------------

    def _hold(
        self,
        rid: str,
        seq: int,
        account: str,
        key: str | None,
        want: int,
        minimum: int,
        ttl: int,
        recorded: int | None = None,
        recovery: str | None = None,
    ) -> int:
        budget = None if key is None else KeyBudget(key, self.m.keys[key].period, 0)
        req = HoldRequest(
            transfer_id=f"{rid}.{seq}",
            request_id=rid,
            seq=seq,
            account_id=account,
            want=want,
            minimum=minimum,
            timeout_at=self.now + ttl,
            key=budget,
            recorded=recorded,
            recovery=recovery,
        )
        (res,) = self.db.write_sync(tick.hold_batch, [req], self.now)
        held, refusal, remaining = self.m.hold(req, None if key is None else self.m.keys[key])
        assert (res.held, res.refusal) == (held, refusal), (req, res)
        if refusal is Refusal.KEY_LIMIT:
            assert res.key_remaining == remaining
        if refusal is Refusal.FUNDS:
            assert res.balance is not None and res.balance.available == self.m.available(account)
        return held

    @rule(
        target=requests,
        account=accounts,
        want=st.integers(1, 400),
        minimum_pct=st.integers(1, 100),
        ttl=st.integers(1, 60),
    )
    def hold(self, account: str, want: int, minimum_pct: int, ttl: int) -> Any:
        rid = uid("r-")
        if self._hold(rid, 0, account, None, want, max(1, want * minimum_pct // 100), ttl):
            return rid
        return multiple()

    @rule(
        target=requests,
        key=keys,
        want=st.integers(1, 400),
        minimum_pct=st.integers(1, 100),
        ttl=st.integers(1, 60),
    )
    def hold_with_key(self, key: str, want: int, minimum_pct: int, ttl: int) -> Any:
        rid = uid("r-")
        account = self.m.keys[key].account
        if self._hold(rid, 0, account, key, want, max(1, want * minimum_pct // 100), ttl):
            return rid
        return multiple()

    @rule(
        request=requests,
        want=st.integers(1, 200),
        minimum_pct=st.integers(1, 100),
        ttl=st.integers(1, 60),
        recorded=st.none() | st.integers(0, 500),
        with_recovery=st.booleans(),
    )
    def extend(
        self,
        request: str,
        want: int,
        minimum_pct: int,
        ttl: int,
        recorded: int | None,
        with_recovery: bool,
    ) -> None:
        r = self.m.requests[request]
        if r.settled:
            return  # a finished request is not extended by its process
        self._hold(
            request,
            len(r.holds),
            r.account,
            r.key,
            want,
            max(1, want * minimum_pct // 100),
            ttl,
            recorded,
            RECOVERY if with_recovery else None,
        )

    def _settlement(self, r: MRequest, actual: int, query: bool) -> Settlement:
        return Settlement(
            request_id=r.rid,
            account_id=r.account,
            key_id=r.key,
            holds=tuple((h.tid, h.amount) for h in r.holds),
            actual=actual,
            query=QUERY if query else None,
        )

    @rule(request=requests, extra=st.integers(-150, 100), query=st.booleans())
    def settle(self, request: str, extra: int, query: bool) -> None:
        """Post anything from 0 to above what was held (a second settlement posts nothing)."""
        r = self.m.requests[request]
        # Money is charged only with its history row: a settlement without one is a void.
        actual = max(0, sum(h.amount for h in r.holds) + extra) if query else 0
        (res,) = self.db.write_sync(
            tick.settle_batch, [self._settlement(r, actual, query)], self.now
        )
        posted, lost, swept = self.m.settle(r, r.holds, actual, query)
        r.settled += 1
        assert (res.posted, res.lost, list(res.swept_holds)) == (posted, lost, swept)
        assert res.posted <= sum(h.amount for h in r.holds)

    @rule(
        target=requests,
        picks=st.lists(
            st.tuples(
                st.integers(0, 10**6), st.booleans(), st.integers(1, 300), st.integers(1, 100)
            ),
            min_size=2,
            max_size=5,
        ),
        accounts=st.lists(accounts, min_size=1, max_size=5),
    )
    def hold_many(self, picks: list[tuple[int, bool, int, int]], accounts: list[str]) -> Any:
        """Several requests' holds in one transaction (what the async batcher sends)."""
        reqs = self._hold_requests(picks, accounts)
        results = self.db.write_sync(tick.hold_batch, [r for r, _ in reqs], self.now)
        return multiple(*self._check_holds(reqs, results))

    def _hold_requests(
        self, picks: list[tuple[int, bool, int, int]], accounts: list[str]
    ) -> list[tuple[HoldRequest, MKey | None]]:
        reqs: list[tuple[HoldRequest, MKey | None]] = []
        keys_of = {a: [k for k, v in self.m.keys.items() if v.account == a] for a in accounts}
        for pick, use_key, want, minimum_pct in picks:
            account = accounts[pick % len(accounts)]
            key = None
            if use_key and keys_of[account]:
                key = keys_of[account][pick % len(keys_of[account])]
            rid = uid("b-")
            budget = None if key is None else KeyBudget(key, self.m.keys[key].period, 0)
            req = HoldRequest(
                f"{rid}.0",
                rid,
                0,
                account,
                want,
                max(1, want * minimum_pct // 100),
                self.now + 30,
                key=budget,
            )
            reqs.append((req, None if key is None else self.m.keys[key]))
        return reqs

    def _check_holds(
        self, reqs: list[tuple[HoldRequest, MKey | None]], results: list[HoldResult]
    ) -> list[str]:
        held = []
        for (req, mkey), res in zip(reqs, results, strict=True):
            expect, refusal, _ = self.m.hold(req, mkey)
            assert (res.transfer_id, res.held, res.refusal) == (req.transfer_id, expect, refusal)
            if expect:
                held.append(req.request_id)
        return held

    @rule(
        target=requests,
        settle=st.lists(
            st.tuples(requests, st.integers(-150, 100), st.booleans()),
            max_size=3,
            unique_by=lambda t: t[0],
        ),
        picks=st.lists(
            st.tuples(
                st.integers(0, 10**6), st.booleans(), st.integers(1, 300), st.integers(1, 100)
            ),
            max_size=4,
        ),
        accounts=st.lists(accounts, min_size=1, max_size=3),
    )
    def tick_mixed(
        self,
        settle: list[tuple[str, int, bool]],
        picks: list[tuple[int, bool, int, int]],
        accounts: list[str],
    ) -> Any:
        """One tick: settlements of finished requests, then new holds, in one transaction (the
        money a settlement releases is available to the holds after it)."""
        batch = []
        for request, extra, query in settle:
            r = self.m.requests[request]
            actual = max(0, sum(h.amount for h in r.holds) + extra) if query else 0
            batch.append((r, actual, query))
        reqs = self._hold_requests(picks, accounts)
        settled, results = self.db.write_sync(
            tick.ledger_tick,
            [self._settlement(r, a, q) for r, a, q in batch],
            [r for r, _ in reqs],
            self.now,
        )
        self._check_settlements(batch, settled)
        return multiple(*self._check_holds(reqs, results))

    @rule(
        picks=st.lists(
            st.tuples(requests, st.integers(-150, 100), st.booleans()), min_size=1, max_size=4
        )
    )
    def settle_many(self, picks: list[tuple[str, int, bool]]) -> None:
        """Several settlements in one transaction, a request possibly named twice."""
        batch = []
        for request, extra, query in picks:
            r = self.m.requests[request]
            actual = max(0, sum(h.amount for h in r.holds) + extra) if query else 0
            batch.append((r, actual, query))
        results = self.db.write_sync(
            tick.settle_batch, [self._settlement(r, a, q) for r, a, q in batch], self.now
        )
        self._check_settlements(batch, results)

    def _check_settlements(self, batch: list[Any], results: list[SettleResult]) -> None:
        for (r, actual, query), res in zip(batch, results, strict=True):
            posted, lost, swept = self.m.settle(r, r.holds, actual, query)
            r.settled += 1
            assert (res.request_id, res.posted, res.lost, list(res.swept_holds)) == (
                r.rid,
                posted,
                lost,
                swept,
            )

    @rule(
        picks=st.lists(
            st.tuples(requests, st.integers(1, 60), st.none() | st.integers(0, 400), st.booleans()),
            min_size=1,
            max_size=4,
            unique_by=lambda t: t[0],
        )
    )
    def renew(self, picks: list[tuple[str, int, int | None, bool]]) -> None:
        """The lease keeper renews live requests' holds and records delivered usage."""
        renewals = [
            ops.Renewal(rid, self.now + ttl, recorded, RECOVERY if rec else None)
            for rid, ttl, recorded, rec in picks
        ]
        self.db.transact_sync(ops.renew_holds, renewals)
        for rn in renewals:
            r = self.m.requests[rn.request_id]
            for h in r.holds:
                if h.open:
                    h.expires = rn.timeout_at
            first = r.holds[0]
            if rn.recorded is not None and first.open:
                first.recorded = rn.recorded
                first.recovery = rn.recovery

    @rule(dt=st.integers(1, 40))
    def advance_time(self, dt: int) -> None:
        self.now += dt

    @rule()
    def sweep(self) -> None:
        n = self.db.write_sync(sweep.sweep_expired, self.now)
        assert n == self.m.sweep(self.now)

    @rule(request=requests, extra=st.integers(-150, 100), query=st.booleans())
    def settle_races_sweep(self, request: str, extra: int, query: bool) -> None:
        """The request's process settles just as a sweeper finds its holds expired."""
        r = self.m.requests[request]
        if r.settled or not any(h.open for h in r.holds):
            return
        self.now = max(self.now, max(h.expires for h in r.holds if h.open) + 1)
        actual = max(0, sum(h.amount for h in r.holds) + extra) if query else 0
        s = self._settlement(r, actual, query)
        gate = threading.Barrier(2)

        def settle() -> Any:
            gate.wait(5)
            return self.db.write_sync(tick.settle_batch, [s], self.now)[0]

        def sweep_now() -> int:
            gate.wait(5)
            return int(self.db.write_sync(sweep.sweep_expired, self.now))

        f_settle, f_sweep = self.pool.submit(settle), self.pool.submit(sweep_now)
        res, swept_n = f_settle.result(30), f_sweep.result(30)
        open_ids = [h.tid for h in r.holds if h.open]
        r.settled += 1
        if not res.swept_holds or set(res.swept_holds) == {h.tid for h in r.holds if not h.open}:
            # The settlement won: it resolved every hold the request still had open.
            posted, lost, _ = self.m.settle(r, r.holds, actual, query)
            assert swept_n == self.m.sweep(self.now)
        else:
            assert set(open_ids) <= set(res.swept_holds), "a settle and a sweep split a request"
            assert swept_n == self.m.sweep(self.now)
            posted, lost, _ = self.m.settle(r, r.holds, actual, query)
        assert (res.posted, res.lost) == (posted, lost)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def rows_match_the_model_and_the_invariants(self) -> None:
        state = self.db.read_sync(read_state)
        assert state["audit"] == []
        assert state["check"] == []
        assert state["accounts"] == self.m.accounts
        for key_id, k in self.m.keys.items():
            assert state["keys"][key_id] == (k.period_key, k.posted, k.pending, k.total), key_id
            if k.limit is not None:
                assert k.posted + k.pending <= k.limit
        expected_holds = {
            h.tid: (h.amount, h.expires, h.recorded, h.recovery)
            for r in self.m.requests.values()
            for h in r.holds
            if h.open
        }
        assert state["holds"] == expected_holds
        assert state["history"] == self.m.history
        for account_id, (dp, dP, _, cP) in state["accounts"].items():
            if account_id not in SYSTEM_ACCOUNTS:
                assert dp + dP <= cP, account_id


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="race") as executor:
        yield executor


@pytest.mark.slow  # fuzzing: hypothesis walks many ledger histories
def test_ledger_state_machine(db: Database, pool: ThreadPoolExecutor) -> None:
    factory = lambda: LedgerMachine(db, pool)  # noqa: E731
    run_state_machine_as_test(factory, settings=SETTINGS)  # type: ignore[arg-type]
