"""Natural batching: concurrent submissions ride together in the next transaction.

No added delay for urgent items: when a batch is in flight, new items queue up and go in the
next one together; one urgent item alone is written at once. An item that may linger (a
settlement nobody waits for) waits up to `linger_s` for an urgent one to ride with, so under a
steady stream of requests a settlement shares its transaction with the next request's hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    def __init__(
        self,
        run: Callable[[list[In]], Awaitable[Sequence[Out]]],
        max_batch: int = 256,
        linger_s: float = 0.0,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, item: In) -> Out:
        return await self.submit_nowait(item)

    def submit_nowait(self, item: In, linger: bool = False) -> asyncio.Future[Out]:
        """Queue an item; the returned future resolves when its batch has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, future))
        if self._task is not None:
            return future  # the running drain takes it next
        if linger and self._linger_s > 0:
            if self._timer is None:
                self._timer = loop.call_later(self._linger_s, self._start)
        else:
            self._start()
        return future

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None and self._queue:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self) -> None:
        """Wait until everything queued so far has been written."""
        self._start()
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._run([item for item, _ in batch])
                except BaseException as exc:  # the whole batch failed: tell every waiter
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._task = None
