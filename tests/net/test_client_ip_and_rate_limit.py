"""Who the client is (X-Forwarded-For only from trusted proxies, rightmost untrusted hop) and
the per-client token bucket."""

from __future__ import annotations

from typing import Any

import pytest

from farebox.net.client_ip import ClientAddress, rate_key
from farebox.net.ratelimit import ClientRateLimited, MemoryRateStore, RateLimiter, RateRule


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {
        "client": (peer, 5000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    clients = ClientAddress(())
    assert clients.of(scope("203.0.113.9", "1.2.3.4")) == "203.0.113.9"
    assert clients.of(scope(None)) == "unknown"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    clients = ClientAddress(["10.0.0.0/8"])
    assert clients.of(scope("198.51.100.7", "10.0.0.1, 1.2.3.4")) == "198.51.100.7"


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    clients = ClientAddress(["10.0.0.0/8", "192.168.1.5"])
    # the client wrote "6.6.6.6" itself; the load balancer appended what it saw
    assert clients.of(scope("10.0.0.2", "6.6.6.6, 198.51.100.7")) == "198.51.100.7"
    # two proxies: the CDN's address is trusted too, so the hop before it is the client
    assert clients.of(scope("10.0.0.2", "6.6.6.6, 198.51.100.7", "192.168.1.5")) == ("198.51.100.7")
    assert clients.of(scope("10.0.0.2", "[2001:db8::5]:443, 10.1.1.1")) == "2001:db8::5"
    assert clients.of(scope("10.0.0.2", "198.51.100.7:61000")) == "198.51.100.7"
    assert clients.of(scope("10.0.0.2")) == "10.0.0.2"  # no header: the proxy itself
    assert clients.of(scope("10.0.0.2", "10.0.0.9")) == "10.0.0.9"  # every hop trusted
    assert clients.of(scope("10.0.0.2", "junk")) == "10.0.0.2"  # unreadable: go no further
    assert clients.of(scope("::ffff:10.0.0.2", "198.51.100.7")) == "198.51.100.7"


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert rate_key("2001:db8:1:2:aaaa::1") == rate_key("2001:db8:1:2:bbbb::2")
    assert rate_key("2001:db8:1:2::1") != rate_key("2001:db8:1:3::1")
    assert rate_key("198.51.100.7") == "198.51.100.7"
    assert rate_key("unknown") == "unknown"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_then_the_rate_then_a_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter("signup", RateRule(per_minute=6, burst=3), MemoryRateStore(), clock)
    for _ in range(3):
        await limiter.check("a")
    with pytest.raises(ClientRateLimited) as limited:
        await limiter.check("a")
    assert limited.value.status == 429 and limited.value.retry_after_s == 10
    await limiter.check("b")  # another client has its own bucket
    clock.now += 9.9
    with pytest.raises(ClientRateLimited):
        await limiter.check("a")  # a refused request takes nothing
    clock.now += 0.2
    await limiter.check("a")
    with pytest.raises(ClientRateLimited):
        await limiter.check("a")
    clock.now += 3600
    for _ in range(3):  # the bucket refills to the burst, no further
        await limiter.check("a")
    with pytest.raises(ClientRateLimited):
        await limiter.check("a")


async def test_a_disabled_rule_never_limits() -> None:
    limiter = RateLimiter("signup", RateRule(per_minute=0, burst=3), MemoryRateStore())
    for _ in range(50):
        await limiter.check("a")


async def test_the_memory_store_keeps_at_most_max_keys() -> None:
    store = MemoryRateStore(max_keys=100)
    rule = RateRule(per_minute=1, burst=1)
    for i in range(1000):
        assert await store.take(f"k{i}", rule, 0.0) == 0.0
    assert len(store._buckets) == 100
    assert await store.take("k999", rule, 0.0) > 0  # recent keys are kept
