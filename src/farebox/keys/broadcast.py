"""Dropping cached keys on every replica at once, over Redis pub/sub.

Each process caches keys for FAREBOX_KEY_CACHE_TTL_S (keys/store.py), so without this a key
revoked on one replica keeps working on the others until their entries expire. With
FAREBOX_REDIS_URL set, every change to a key (revoke, update) or an account's credentials
(credit_id rotation) is published on `{prefix}keys` as "key:<id>" or "account:<id>", and every
replica's subscriber drops the matching entries as the message arrives (milliseconds).

Pub/sub delivers only while connected: a subscriber that loses Redis drops its whole cache when
it subscribes again (it may have missed messages), and until then the TTL bounds how stale a
cached key can be, as without Redis. Publishing never fails a request: the change is already in
the database, and this process' own cache was dropped before publishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from farebox.periodic import cancel

log = logging.getLogger("farebox.keys")

RESUBSCRIBE_S = 1.0


class KeyBroadcast:
    """Publishes key changes and applies those of other replicas to this one's cache."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.channel = f"{prefix}keys"
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def announce(self, change: str) -> None:
        try:
            await self.redis.publish(self.channel, change)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "could not publish a key change over Redis (%s): other replicas drop it from "
                "their caches when it expires",
                type(exc).__name__,
            )

    def start(self, drop: Callable[[str], None]) -> None:
        """Apply every change announced (here or on another replica) with `drop`."""
        self._task = asyncio.get_running_loop().create_task(self._listen(drop))

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _listen(self, drop: Callable[[str], None]) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                drop("all")  # anything announced while we were not listening is gone
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        drop(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: listen again when it is back
                self.subscribed.clear()
                log.warning(
                    "key-change subscription over Redis lost (%s); retrying in %.0f s",
                    type(exc).__name__,
                    RESUBSCRIBE_S,
                )
                await asyncio.sleep(RESUBSCRIBE_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
