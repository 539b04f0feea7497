"""Natural batching: concurrent submissions ride together in the next transaction.

No timer and no added delay: when a batch is in flight, new items queue up and go in the next
one together. One request alone is written at once; many at once share a commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    def __init__(
        self, run: Callable[[list[In]], Awaitable[Sequence[Out]]], max_batch: int = 256
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        return await self.submit_nowait(item)

    def submit_nowait(self, item: In) -> asyncio.Future[Out]:
        """Queue an item; the returned future resolves when its batch has committed."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return future

    async def flush(self) -> None:
        """Wait until everything queued so far has been written."""
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
