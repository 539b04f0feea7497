"""What FAREBOX_REDIS_URL turns on, built in one place: the rate-limit windows (in Redis, else in
this process) and the key-change broadcast (only with Redis).

Without FAREBOX_REDIS_URL the redis library (about 6 MB resident) is never imported: the modules
that use it are loaded by `build_limits` only when a URL is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from farebox.keys.store import KeyStore
from farebox.limits.gate import KeyGate
from farebox.limits.windows import MemoryWindows

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from farebox.keys.broadcast import KeyBroadcast


@dataclass
class SharedLimits:
    gate: KeyGate
    redis: Redis | None = None
    broadcast: KeyBroadcast | None = None

    def start(self, keys: KeyStore) -> None:
        """Start applying other replicas' key changes to `keys` (in the serving loop)."""
        if self.broadcast is not None:
            self.broadcast.start(keys.drop)

    async def close(self) -> None:
        await self.gate.drain()
        if self.broadcast is not None:
            await self.broadcast.stop()
        if self.redis is not None:
            await self.redis.aclose()


def build_limits(redis_url: str | None, prefix: str) -> SharedLimits:
    if not redis_url:
        return SharedLimits(KeyGate(MemoryWindows()))
    from farebox.keys.broadcast import KeyBroadcast
    from farebox.limits.redis_windows import RedisWindows, redis_client

    redis = redis_client(redis_url)
    return SharedLimits(
        KeyGate(RedisWindows(redis, prefix)), redis=redis, broadcast=KeyBroadcast(redis, prefix)
    )
