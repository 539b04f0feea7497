"""A background step repeated at a fixed interval (sweeper, lease renewal, reconcilers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("farebox")


class Periodic:
    """Runs `step()` every `interval` seconds until stopped; a failing step is logged and the
    next one runs on time. With `immediately`, the first step runs at start."""

    def __init__(
        self,
        name: str,
        interval: float,
        step: Callable[[], Awaitable[object]],
        *,
        immediately: bool = False,
    ) -> None:
        self.name = name
        self.interval = interval
        self.step = step
        self.immediately = immediately
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        if not self.immediately:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; will retry in %.1f s", self.name, self.interval)
            await asyncio.sleep(self.interval)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait until it has stopped (nothing for None)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
