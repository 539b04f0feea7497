"""Keeping live requests' holds alive.

A hold times out so that a crashed process's money comes back; a request that is still running
must therefore renew its holds. One loop per process renews every live request in a single
transaction every third of the hold timeout, recording the usage delivered so far, so a crash
costs at most the output of the last third of a timeout, and a slow request is never swept.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from farebox.ledger.ops import Renewal
from farebox.ledger.service import Ledger
from farebox.periodic import Periodic

# What a running request has delivered: (nanodollars used, the history row to write on a crash).
Progress = Callable[[], tuple[int, str | None]]


class LeaseKeeper(Periodic):
    def __init__(self, ledger: Ledger, hold_timeout_s: float) -> None:
        super().__init__("renewing live holds", max(0.05, hold_timeout_s / 3), self.renew_now)
        self.ledger = ledger
        self.hold_timeout_s = hold_timeout_s
        self._live: dict[str, Progress | None] = {}

    def track(self, request_id: str, progress: Progress | None = None) -> None:
        self._live[request_id] = progress

    def set_progress(self, request_id: str, progress: Progress) -> None:
        if request_id in self._live:
            self._live[request_id] = progress

    def untrack(self, request_id: str) -> None:
        self._live.pop(request_id, None)

    async def renew_now(self) -> None:
        if not self._live:
            return
        timeout_at = time.time() + self.hold_timeout_s
        renewals = []
        for request_id, progress in list(self._live.items()):
            recorded, recovery = progress() if progress is not None else (None, None)
            renewals.append(Renewal(request_id, timeout_at, recorded, recovery))
        await self.ledger.renew(renewals)
