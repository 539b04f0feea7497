"""The ledger as the rest of farebox sees it: async, batched, one object passed in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from farebox.db.database import Database
from farebox.ledger import ops
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


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._holds: Batcher[HoldRequest, HoldResult] = Batcher(self._hold_batch)
        self._settles: Batcher[Settlement, SettleResult] = Batcher(self._settle_batch)
        self._settle_listeners: list[SettleListener] = []

    def add_settle_listener(self, listener: SettleListener) -> None:
        """Call `listener(settlements)` after each batch of settlements commits (e.g. to check
        auto top-up thresholds). Listeners must be quick and must not raise."""
        self._settle_listeners.append(listener)

    async def _hold_batch(self, requests: list[HoldRequest]) -> list[HoldResult]:
        return await self.db.write(ops.hold_batch, requests)

    async def _settle_batch(self, settlements: list[Settlement]) -> list[SettleResult]:
        results = await self.db.write(ops.settle_batch, settlements)
        for listener in self._settle_listeners:
            try:
                listener(settlements)
            except Exception:
                log.exception("a settle listener failed")
        return results

    async def hold(self, request: HoldRequest) -> HoldResult:
        return await self._holds.submit(request)

    async def settle(self, settlement: Settlement) -> SettleResult:
        return await self._settles.submit(settlement)

    def settle_later(self, settlement: Settlement) -> asyncio.Future[SettleResult]:
        """Group-commit a settlement; the future resolves once it is durable."""
        return self._settles.submit_nowait(settlement)

    async def flush(self) -> None:
        await self._holds.flush()
        await self._settles.flush()

    async def record_progress(
        self, request_id: str, recorded: int, recovery: str | None, timeout_at: float
    ) -> None:
        await self.db.write(ops.record_progress, request_id, recorded, recovery, timeout_at)

    async def renew(self, renewals: Sequence[ops.Renewal]) -> None:
        await self.db.write(ops.renew_holds, renewals)

    async def balance(self, account_id: str) -> Balance | None:
        return await self.db.read(ops.get_balance, account_id)

    async def transfer(self, t: Transfer) -> bool:
        return await self.db.write(ops.transfer, t)

    async def create_customer_account(self, account_id: str) -> None:
        await self.db.write(ops.create_customer_account, account_id)

    async def sweep(self) -> int:
        return await self.db.write(ops.sweep_expired)

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
