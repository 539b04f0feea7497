"""The per-key windows (limits/windows.py) kept in Redis, so every replica counts the same
minute: one hash per key (`{prefix}limits:{key_id}`, fields w rp rc tp tc) changed by one Lua
script, atomically, on Redis' own clock (replicas' clocks may differ; Redis' is one).

When Redis does not answer (down, unreachable, slower than its socket timeout) the limits fail
OPEN TO THIS PROCESS: the request is counted in the process' own windows instead (as without
FAREBOX_REDIS_URL), a warning is logged (at most every 30 s), and Redis is tried again after a
second. Money is never at risk (holds are the ledger's, not Redis'); what an outage costs is
that each replica enforces the limits alone, so N replicas admit up to N times a key's limit
until Redis is back. Failing closed would turn a cache outage into a full outage of paid traffic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from farebox.limits.windows import ADMITTED, WINDOW_S, MemoryWindows, Verdict

log = logging.getLogger("farebox.limits")

# A request waits at most this long on Redis before the limits fall back to this process.
REDIS_TIMEOUT_S = 0.5
RETRY_AFTER_FAILURE_S = 1.0
WARN_EVERY_S = 30.0
TTL_MS = int(WINDOW_S * 2 * 1000) + 5000  # two windows, then an idle key's hash expires

# windows.decide() and windows.roll() in Lua. ARGV: mode ("a" admit, "p" peek: admit's answer,
# nothing counted or written; "t" add tokens), now (or ""
# for Redis' TIME), rpm (0: none), tpm (0: none), tokens. Returns {0, 0} when admitted (or for
# "t"), else {1 (rpm) or 2 (tpm), wait in microseconds}.
SCRIPT = """
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local W = 60
local window = math.floor(now / W)
local s = redis.call('HMGET', KEYS[1], 'w', 'rp', 'rc', 'tp', 'tc')
local w = tonumber(s[1]) or -2
local rp, rc = tonumber(s[2]) or 0, tonumber(s[3]) or 0
local tp, tc = tonumber(s[4]) or 0, tonumber(s[5]) or 0
if w ~= window then
  if w == window - 1 then rp, tp = rc, tc else rp, tp = 0, 0 end
  rc, tc = 0, 0
end
local function wait(prev, cur, elapsed, limit, need)
  local excess = prev * (1 - elapsed / W) + cur + need - limit
  if excess <= 0 then return 0 end
  if prev > 0 then
    local t = excess * W / prev
    if t <= W - elapsed then return t end
  end
  local rest = W - elapsed
  if cur + need <= limit or cur <= 0 then return rest end
  return rest + math.min(W, (cur + need - limit) * W / cur)
end
local elapsed = now - window * W
local weight = 1 - elapsed / W
local verdict = {0, 0}
local mode = ARGV[1]
if mode == 'a' or mode == 'p' then
  local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
  if rpm > 0 and rp * weight + rc + 1 > rpm then
    verdict = {1, math.ceil(wait(rp, rc, elapsed, rpm, 1) * 1000000)}
  elseif tpm > 0 and tp * weight + tc >= tpm then
    verdict = {2, math.max(1000, math.ceil(wait(tp, tc, elapsed, tpm, 0) * 1000000))}
  elseif mode == 'a' then
    rc = rc + 1
  end
else
  tc = tc + tonumber(ARGV[5])
end
if mode == 'p' then return verdict end
redis.call('HSET', KEYS[1], 'w', window, 'rp', rp, 'rc', rc, 'tp', tp, 'tc', tc)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return verdict
"""

_LIMITS = {1: "rpm", 2: "tpm"}


def redis_client(url: str) -> Redis:
    """One client (a connection pool) per process; no retries: a Redis that does not answer
    at once is treated as down (see above), not waited for."""
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class RedisWindows:
    """Windows in Redis, falling back to this process' own while Redis does not answer."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        clock: Callable[[], float] | None = None,
        fallback: MemoryWindows | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock  # None: Redis' own clock (tests pass one)
        self.fallback = fallback or MemoryWindows(clock or time.time)
        self._script = redis.register_script(SCRIPT)
        self._skip_until = 0.0
        self._warned_at = -WARN_EVERY_S

    def _key(self, key_id: str) -> str:
        return f"{self.prefix}limits:{key_id}"

    def _args(self, mode: str, rpm: int, tpm: int, tokens: int) -> list[Any]:
        now = "" if self.clock is None else repr(self.clock())
        return [mode, now, rpm, tpm, tokens, TTL_MS]

    async def _run(self, key_id: str, mode: str, rpm: int, tpm: int, tokens: int) -> Any:
        return await self._script(keys=[self._key(key_id)], args=self._args(mode, rpm, tpm, tokens))

    def _usable(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._skip_until = now + RETRY_AFTER_FAILURE_S
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "Redis did not answer (%s): per-key rate limits are counted per process until "
                "it does",
                type(exc).__name__,
            )

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        verdict = await self._decide(key_id, "a", rpm, tpm)
        return verdict if verdict is not None else self.fallback.admit_now(key_id, rpm, tpm)

    async def peek(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        verdict = await self._decide(key_id, "p", rpm, tpm)
        return verdict if verdict is not None else self.fallback.peek_now(key_id, rpm, tpm)

    async def _decide(
        self, key_id: str, mode: str, rpm: int | None, tpm: int | None
    ) -> Verdict | None:
        """Redis' verdict, or None when Redis does not answer (the caller asks the fallback)."""
        if not self._usable():
            return None
        try:
            code, wait_us = await self._run(key_id, mode, rpm or 0, tpm or 0, 0)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return None
        if int(code) == 0:
            return ADMITTED
        return Verdict(int(wait_us) / 1_000_000, _LIMITS[int(code)])

    async def add_tokens(self, counts: Mapping[str, int]) -> None:
        """All of `counts` in one round trip (a pipeline of the script, one call per key)."""
        if self._usable():
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key_id, tokens in counts.items():
                        await self._script(
                            keys=[self._key(key_id)],
                            args=self._args("t", 0, 0, tokens),
                            client=pipe,
                        )
                    await pipe.execute()
                return
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed(exc)
        for key_id, tokens in counts.items():
            self.fallback.add_tokens_now(key_id, tokens)
