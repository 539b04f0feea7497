"""The ledger as the rest of farebox sees it: async, batched, one object passed in."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from farebox.db.database import Database
from farebox.db.schema import holds
from farebox.db.session import CheckFailed
from farebox.ledger import ops, sweep, tick
from farebox.ledger.batcher import Batcher
from farebox.ledger.check import CheckReport, check_ledger
from farebox.ledger.types import (
    Balance,
    HoldRequest,
    HoldResult,
    Settlement,
    SettleResult,
    Transfer,
)
from farebox.periodic import Periodic

log = logging.getLogger("farebox.ledger")


SettleListener = Callable[[Sequence[Settlement]], None]

# How long a settlement nobody waits for may wait for a hold to share a transaction with.
SETTLE_LINGER_S = 0.002


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Holds and settlements due at the same moment share one transaction (a tick).
        self._ticks: Batcher[HoldRequest | Settlement, HoldResult | SettleResult] = Batcher(
            self._tick, linger_s=SETTLE_LINGER_S
        )
        self._settle_listeners: list[SettleListener] = []

    def add_settle_listener(self, listener: SettleListener) -> None:
        """Call `listener(settlements)` after each batch of settlements commits (e.g. to check
        auto top-up thresholds). Listeners must be quick and must not raise."""
        self._settle_listeners.append(listener)

    async def _tick(self, items: list[HoldRequest | Settlement]) -> list[HoldResult | SettleResult]:
        settlements = [item for item in items if isinstance(item, Settlement)]
        requests = [item for item in items if isinstance(item, HoldRequest)]
        settled, held = await self._transact_tick(settlements, requests)
        if settlements:
            for listener in self._settle_listeners:
                try:
                    listener(settlements)
                except Exception:
                    log.exception("a settle listener failed")
        settled_iter, held_iter = iter(settled), iter(held)
        return [
            next(settled_iter) if isinstance(item, Settlement) else next(held_iter)
            for item in items
        ]

    async def _transact_tick(
        self, settlements: list[Settlement], requests: list[HoldRequest]
    ) -> tick.TickResults:
        """One tick, committed. Pipelined, the common case first as a transaction of its own (no
        BEGIN or COMMIT: one round trip), then, if it failed, step by step."""
        now = time.time()
        if self.db.pipelined and tick.may_tick_at_once(requests):
            try:
                return await self.db.transact(
                    tick.tick_at_once, settlements, requests, now, at_once=True
                )
            except CheckFailed:
                pass
        return await self.db.transact(tick.tick_step_by_step, settlements, requests, now)

    async def hold(self, request: HoldRequest) -> HoldResult:
        result = await self._ticks.submit(request)
        assert isinstance(result, HoldResult)
        return result

    async def settle(self, settlement: Settlement) -> SettleResult:
        result = await self._ticks.submit(settlement)
        assert isinstance(result, SettleResult)
        return result

    def settle_later(self, settlement: Settlement) -> asyncio.Future[SettleResult]:
        """Group-commit a settlement; the future resolves once it is durable.

        It waits up to SETTLE_LINGER_S for the next hold, to share its transaction. Until it
        commits the request's holds stay open; if the process dies meanwhile the sweeper posts
        the usage the holds recorded (streams record it as they go) and voids the rest.
        """
        return self._ticks.submit_nowait(settlement, linger=True)  # type: ignore[return-value]

    async def flush(self) -> None:
        await self._ticks.flush()

    async def record_progress(
        self, request_id: str, recorded: int, recovery: str | None, timeout_at: float
    ) -> None:
        await self.renew([ops.Renewal(request_id, timeout_at, recorded, recovery)])

    async def renew(self, renewals: Sequence[ops.Renewal]) -> None:
        await self.db.transact(ops.renew_holds, renewals)

    async def balance(self, account_id: str) -> Balance | None:
        return await self.db.read(ops.get_balance, account_id)

    async def transfer(self, t: Transfer) -> bool:
        return await self.db.write(ops.transfer, t)

    async def create_customer_account(self, account_id: str) -> None:
        await self.db.write(ops.create_customer_account, account_id)

    async def sweep(self) -> int:
        """Resolve expired holds; then reclaim the rows of resolved ones (PostgreSQL)."""
        swept = await self.db.write(sweep.sweep_expired)
        await self.db.vacuum(holds.name)
        return swept

    async def check(self) -> CheckReport:
        return await self.db.read(check_ledger)


class Sweeper(Periodic):
    """Resolves expired holds at start and then every `interval` seconds."""

    def __init__(self, ledger: Ledger, interval: float) -> None:
        super().__init__("sweeping expired holds", interval, self._sweep_once, immediately=True)
        self.ledger = ledger

    async def _sweep_once(self) -> None:
        swept = await self.ledger.sweep()
        if swept:
            log.info("swept %d expired request holds", swept)
