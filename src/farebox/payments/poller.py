"""Reconciles pending invoices in the background, for webhooks that never came."""

from __future__ import annotations

import asyncio
import logging

from farebox.payments.service import TopupService
from farebox.periodic import cancel

log = logging.getLogger("farebox.payments")


class Reconciler:
    def __init__(self, topups: TopupService, interval_s: float) -> None:
        self.topups = topups
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.topups.backends and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.topups.poll_once(min_age_s=self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciling top-up invoices failed; will retry")
