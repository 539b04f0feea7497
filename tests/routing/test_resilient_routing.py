"""Fallback, retries, per-route timeouts and the circuit breaker, through a live gateway: every
request is charged once or not at all, and route health shows in /admin/routes and /readyz."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from routing_support import Routes

from support import ADMIN_TOKEN, NANOS, Gateway, wait_until

HI = [{"role": "user", "content": "hi"}]


def chat(gw: Gateway, key: str, model: str, **extra: Any) -> httpx.Response:
    with gw.client() as c:
        return c.post(
            "/v1/chat/completions",
            json={"model": model, "messages": HI, **extra},
            headers={"Authorization": f"Bearer {key}"},
        )


def route_state(gw: Gateway, provider: str) -> dict[str, Any]:
    with gw.client() as c:
        r = c.get("/admin/routes", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200, r.text
    (row,) = [row for row in r.json()["data"] if row["provider"] == provider]
    return dict(row)


def settled(gw: Gateway, credit_id: str) -> int:
    """Spent so far (nothing reserved, history agrees, ledger clean)."""
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    spent = NANOS - balance
    assert gw.history_total_nanos(credit_id) == spent
    assert gw.check().ok
    return spent


def cost(r: httpx.Response) -> int:
    assert r.status_code == 200, r.text
    return round(r.json()["usage"]["cost"] * NANOS)


def test_breaker_opens_after_repeated_failures_and_closes_after_recovery(routes: Routes) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    charged = 0
    # two failures in a row (the route fails its first 3 requests): the second opens the breaker
    for expected_hits in (1, 2):
        charged += cost(chat(gw, key, "flaky-model"))  # the second route answers
        assert routes.hits("flaky") == expected_hits
    state = route_state(gw, "flaky")
    assert state["state"] == "open" and state["consecutive_failures"] == 2
    assert "503" in state["last_error"] and state["models"] == ["flaky-model"]
    with gw.client() as c:
        assert c.get("/readyz").json()["routes"]["open"] >= 1
    # while it rests, requests do not touch it
    charged += cost(chat(gw, key, "flaky-model"))
    assert routes.hits("flaky") == 2
    # after the cooldown one probe goes through; it fails (3rd request) and rests the route again
    assert wait_until(lambda: route_state(gw, "flaky")["retry_in_s"] == 0)
    charged += cost(chat(gw, key, "flaky-model"))
    assert routes.hits("flaky") == 3
    assert route_state(gw, "flaky")["state"] == "open"
    # the next probe succeeds: the breaker closes and the route serves again
    assert wait_until(lambda: route_state(gw, "flaky")["retry_in_s"] == 0)
    ok_before = routes.hits("ok")
    charged += cost(chat(gw, key, "flaky-model"))
    assert routes.hits("flaky") == 4 and routes.hits("ok") == ok_before
    state = route_state(gw, "flaky")
    assert state["state"] == "closed" and state["consecutive_failures"] == 0
    assert settled(gw, credit_id) == charged


def test_first_byte_timeout_falls_back_and_charges_once(routes: Routes) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    for stream in (False, True):
        r = chat(gw, key, "hang-model", stream=stream)
        assert r.status_code == 200, r.text
    assert "first byte" in (route_state(gw, "hang")["last_error"] or "")
    assert settled(gw, credit_id) > 0


def test_idle_timeout_mid_stream_ends_it_and_charges_what_came(routes: Routes) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    r = chat(gw, key, "slow-model", stream=True, sim={"output_tokens": 30})
    assert r.status_code == 200
    events = [orjson.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert any(e.get("error", {}).get("code") == "upstream_stream_broken" for e in events)
    usage = next(e["usage"] for e in events if e.get("usage"))
    assert 0 < usage["completion_tokens"] < 30
    assert settled(gw, credit_id) == round(usage["cost"] * NANOS)
    assert routes.hits("slow") == 1  # no retry once output had started


def test_a_failed_pass_is_retried_after_a_backoff(routes: Routes) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    charged = cost(chat(gw, key, "retry-model"))  # one route; its first request fails (503)
    assert routes.hits("retry") == 2
    assert settled(gw, credit_id) == charged


def test_every_route_failing_is_a_clear_503_and_free(routes: Routes) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    before = routes.hits("down503")
    r = chat(gw, key, "down-model")
    assert r.status_code in (502, 503)
    message = r.json()["error"]["message"]
    assert "Nothing was charged" in message and "down503" in message
    assert routes.hits("down503") - before == 2  # tried, then retried once
    assert settled(gw, credit_id) == 0
    # both routes are now resting: the next request fails fast without reaching them
    r = chat(gw, key, "down-model")
    assert r.status_code == 503 and "resting" in r.json()["error"]["message"]
    assert r.headers["retry-after"]
    assert routes.hits("down503") - before == 2
    assert settled(gw, credit_id) == 0


def test_no_retry_once_output_has_started(routes: Routes) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    ok_before = routes.hits("ok")
    r = chat(gw, key, "cut-model", stream=True, sim={"output_tokens": 20})
    assert r.status_code == 200
    assert "upstream_stream_broken" in r.text
    assert routes.hits("cut") == 1 and routes.hits("ok") == ok_before
    assert settled(gw, credit_id) > 0


def test_admin_routes_needs_the_admin_token(routes: Routes) -> None:
    with routes.gateway.client() as c:
        assert c.get("/admin/routes").status_code == 401
        r = c.get("/admin/routes", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
