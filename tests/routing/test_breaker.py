"""The circuit breaker's states on a hand-driven clock, and the policy read from the env."""

from __future__ import annotations

import random

import pytest

from farebox.providers.breaker import CLOSED, HALF_OPEN, OPEN, RouteHealth, RoutingPolicy

POLICY = RoutingPolicy(failures_to_open=3, cooldown_s=10, max_cooldown_s=25)


def test_opens_after_consecutive_failures_only() -> None:
    b = RouteHealth(POLICY).breaker("p", "m")
    b.failure(0, "503")
    b.failure(0, "503")
    b.success()  # a success in between resets the count
    b.failure(0, "503")
    b.failure(0, "503")
    assert b.state == CLOSED and b.allow(0)
    b.failure(1, "timeout")
    assert b.state == OPEN and b.last_error == "timeout"
    assert not b.allow(10.9)


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    b = RouteHealth(POLICY).breaker("p", "m")
    for _ in range(3):
        b.failure(0, "503")
    assert b.allow(10) and b.state == HALF_OPEN
    assert not b.allow(10)  # one probe at a time
    b.success()
    assert b.state == CLOSED and b.allow(10) and b.allow(10)
    assert b.snapshot(10)["retry_in_s"] is None


def test_a_failed_probe_rests_the_route_twice_as_long_up_to_the_cap() -> None:
    b = RouteHealth(POLICY).breaker("p", "m")
    for _ in range(3):
        b.failure(0, "503")
    assert b.allow(10)
    b.failure(10, "503")
    assert b.state == OPEN and b.snapshot(10)["retry_in_s"] == 20
    assert not b.allow(29.9) and b.allow(30)
    b.failure(30, "503")
    assert b.snapshot(30)["retry_in_s"] == 25  # capped


def test_a_cancelled_probe_lets_the_next_request_probe() -> None:
    b = RouteHealth(POLICY).breaker("p", "m")
    for _ in range(3):
        b.failure(0, "503")
    assert b.allow(10)
    b.release()
    assert b.allow(10)


def test_health_summary_and_snapshot() -> None:
    health = RouteHealth(POLICY, clock=lambda: 5.0)
    health.breaker("a", "m1").success()
    for _ in range(3):
        health.breaker("b", "m2").failure(0, "down")
    assert health.summary() == {"routes_used": 2, "open": 1, "half_open": 0}
    rows = {row["provider"]: row for row in health.snapshot()}
    assert rows["b"]["state"] == OPEN and rows["b"]["retry_in_s"] == 5
    assert rows["a"]["successes"] == 1


def test_policy_from_env() -> None:
    policy = RoutingPolicy.from_env(
        {"FAREBOX_ROUTE_RETRIES": "2", "FAREBOX_ROUTE_COOLDOWN_S": "1.5"}
    )
    assert policy.retries == 2 and policy.cooldown_s == 1.5
    assert policy.failures_to_open == RoutingPolicy().failures_to_open
    with pytest.raises(ValueError, match="FAREBOX_ROUTE_BACKOFF_S"):
        RoutingPolicy.from_env({"FAREBOX_ROUTE_BACKOFF_S": "soon"})
    with pytest.raises(ValueError, match="negative"):
        RoutingPolicy.from_env({"FAREBOX_ROUTE_RETRIES": "-1"})


def test_backoff_doubles_with_jitter() -> None:
    policy = RoutingPolicy(backoff_s=1.0)
    rng = random.Random(7)
    first, second = policy.backoff(1, rng), policy.backoff(2, rng)
    assert 0.5 <= first <= 1.5 and 1.0 <= second <= 3.0
