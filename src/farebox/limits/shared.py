"""What FAREBOX_REDIS_URL turns on, built in one place: the rate-limit windows (in Redis, else in
this process) and the key-change broadcast (only with Redis)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from farebox.keys.broadcast import KeyBroadcast
from farebox.keys.store import KeyStore
from farebox.limits.gate import KeyGate
from farebox.limits.redis_windows import RedisWindows
from farebox.limits.windows import MemoryWindows

# A request waits at most this long on Redis before the limits fall back to this process.
REDIS_TIMEOUT_S = 0.5


def redis_client(url: str) -> Redis:
    """One client (a connection pool) per process; no retries: a Redis that does not answer
    at once is treated as down (limits/redis_windows.py), not waited for."""
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


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
    redis = redis_client(redis_url)
    return SharedLimits(
        KeyGate(RedisWindows(redis, prefix)), redis=redis, broadcast=KeyBroadcast(redis, prefix)
    )
