"""The last minute's count per key (fixed window with the previous one weighted in), the same
in this process and in Redis' Lua script, driven by a clock the test sets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from farebox.limits.redis_windows import RedisWindows, redis_client
from farebox.limits.windows import MemoryWindows, WindowStore, wait_s

from redis_support import REDIS_URL, require_redis, test_prefix

T0 = 1_800_000_000.0  # a window boundary (divisible by 60)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    return str(request.param)


async def make_store(kind: str, clock: Clock) -> tuple[WindowStore, Redis | None]:
    if kind == "memory":
        return MemoryWindows(clock), None
    redis = redis_client(REDIS_URL)
    return RedisWindows(redis, test_prefix(), clock=clock), redis


def run(kind: str, body: Callable[[WindowStore, Clock], object]) -> None:
    async def main() -> None:
        clock = Clock()
        store, redis = await make_store(kind, clock)
        try:
            await body(store, clock)  # type: ignore[misc]
        finally:
            if redis is not None:
                await redis.aclose()

    asyncio.run(main())


def test_rpm_admits_the_limit_then_refuses_with_a_wait(kind: str) -> None:
    async def body(store: WindowStore, clock: Clock) -> None:
        for _ in range(3):
            assert (await store.admit("k", 3, None)).admitted
        refused = await store.admit("k", 3, None)
        assert not refused.admitted and refused.limit == "rpm"
        # the window's 60 s, then 20 s more until 3 × (1 - 20/60) + 1 <= 3
        assert refused.retry_after_s == 80
        clock.now = T0 + 60 + 30  # half into the next window: 3 × 0.5 + 0 + 1 <= 3
        assert (await store.admit("k", 3, None)).admitted
        assert (await store.admit("k", 3, None)).admitted is False  # 1.5 + 1 + 1 > 3

    run(kind, body)


def test_a_refused_request_counts_for_nothing(kind: str) -> None:
    async def body(store: WindowStore, clock: Clock) -> None:
        assert (await store.admit("k", 1, None)).admitted
        for _ in range(20):
            assert not (await store.admit("k", 1, None)).admitted
        clock.now = T0 + 120  # two windows later: nothing weighs any more
        assert (await store.admit("k", 1, None)).admitted

    run(kind, body)


def test_tokens_settled_in_the_last_minute_refuse_until_they_age_out(kind: str) -> None:
    async def body(store: WindowStore, clock: Clock) -> None:
        assert (await store.admit("k", None, 1000)).admitted
        await store.add_tokens({"k": 999})
        assert (await store.admit("k", None, 1000)).admitted  # 999 < 1000
        await store.add_tokens({"k": 5000})  # one large answer overshoots
        refused = await store.admit("k", None, 1000)
        assert not refused.admitted and refused.limit == "tpm"
        assert refused.retry_after_s > 60  # it weighs into the next window too
        clock.now = T0 + 60 + 55  # 5999 × 5/60 ≈ 500 left in the estimate
        assert (await store.admit("k", None, 1000)).admitted

    run(kind, body)


def test_a_peek_answers_as_admit_would_and_counts_nothing(kind: str) -> None:
    async def body(store: WindowStore, clock: Clock) -> None:
        for _ in range(5):
            assert (await store.peek("k", 2, None)).admitted
        assert (await store.admit("k", 2, None)).admitted
        assert (await store.admit("k", 2, None)).admitted  # the peeks took none of the two
        peeked, refused = await store.peek("k", 2, None), await store.admit("k", 2, None)
        assert (peeked.admitted, peeked.limit) == (False, "rpm") == (refused.admitted, "rpm")
        assert peeked.wait_s == pytest.approx(refused.wait_s, abs=1e-3)
        await store.add_tokens({"t": 100})
        assert not (await store.peek("t", None, 100)).admitted
        assert (await store.peek("t", None, 101)).admitted
        clock.now = T0 + 180
        assert (await store.peek("k", 2, None)).admitted

    run(kind, body)


def test_keys_are_counted_apart(kind: str) -> None:
    async def body(store: WindowStore, clock: Clock) -> None:
        assert (await store.admit("a", 1, None)).admitted
        assert (await store.admit("b", 1, None)).admitted
        assert not (await store.admit("a", 1, None)).admitted

    run(kind, body)


def test_redis_script_decides_as_the_python_rule_does() -> None:
    """The Lua script is windows.decide() line for line: the same random sequence of
    admissions, token counts and clock steps gets the same verdicts from both stores."""
    require_redis()

    async def main() -> None:
        rng = random.Random(7)
        clock = Clock(T0 + 13.5)
        memory = MemoryWindows(clock)
        redis = redis_client(REDIS_URL)
        shared = RedisWindows(redis, test_prefix(), clock=clock)
        try:
            for _ in range(400):
                clock.now += rng.choice([0.0, 0.5, 3.0, 17.25, 61.0])
                if rng.random() < 0.3:
                    tokens = rng.randint(1, 400)
                    await memory.add_tokens({"k": tokens})
                    await shared.add_tokens({"k": tokens, "other": 1})
                    continue
                rpm, tpm = rng.choice([5, 20, None]), rng.choice([500, 3000, None])
                if rng.random() < 0.2:  # a peek: the same answer, nothing counted
                    mine, theirs = (
                        await memory.peek("k", rpm, tpm),
                        await shared.peek("k", rpm, tpm),
                    )
                else:
                    mine = await memory.admit("k", rpm, tpm)
                    theirs = await shared.admit("k", rpm, tpm)
                assert (mine.admitted, mine.limit) == (theirs.admitted, theirs.limit)
                assert mine.wait_s == pytest.approx(theirs.wait_s, abs=1e-3)
        finally:
            await redis.aclose()

    asyncio.run(main())


def test_wait_is_when_the_estimate_falls_to_the_limit() -> None:
    # prev 60 at the start of a window, limit 30: half the previous window must age out
    assert wait_s(60, 0, 0, 30, 0) == pytest.approx(30)
    # nothing before and the current window full: wait for it to end, then its weight to fall
    assert wait_s(0, 10, 20, 10, 1) == pytest.approx(40 + 6)
    assert wait_s(0, 0, 0, 10, 1) == 0.0
