"""What a failed data call costs: nothing. A provider's 4xx for the caller's parameters comes
back as our 400 quoting it; 5xx, 429, timeouts, refused credentials and a missing operator key
each get their own status; the hold is released every time."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from data_support import call, data_rows, endpoint, unchanged, upstream_requests
from support import NANOS, Gateway

PROVIDER_REJECTS = [
    # Google: an unknown place id is NOT_FOUND
    ("google-maps/place-details/full", {"placeId": "notaplace"}, "no longer valid"),
    # Google: a circle larger than 50 km is INVALID_ARGUMENT
    (
        "google-maps/nearby-search/partial",
        {
            "locationRestriction": {
                "circle": {"center": {"latitude": 1, "longitude": 2}, "radius": 90000}
            }
        },
        "radius",
    ),
    # Reddit: no such subreddit
    ("reddit/search", {"query": "x", "subreddit": "doesnotexist"}, "Not Found"),
]


@pytest.mark.parametrize(("endpoint_id", "params", "quoted"), PROVIDER_REJECTS)
def test_provider_4xx_is_our_400_and_free(
    data_gw: Gateway, sim: Any, endpoint_id: str, params: dict[str, Any], quoted: str
) -> None:
    credit_id, key = data_gw.create_account(1)
    before = upstream_requests(sim)
    r = call(data_gw, key, endpoint_id, params)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "upstream_rejected"
    assert "Nothing was charged" in error["message"]
    assert quoted in error["message"]
    assert upstream_requests(sim) > before  # it did reach the provider
    unchanged(data_gw, credit_id, NANOS)


FAILURES = [
    ("test/exa-500", 502, "upstream_error", "HTTP 500"),
    ("test/exa-429", 503, "upstream_unavailable", "rate limiting"),
    ("test/exa-timeout", 504, "upstream_timeout", "did not answer in time"),
    ("test/exa-nokey", 502, "upstream_error", "refused this server's credentials"),
    ("test/exa-unset", 501, "endpoint_not_configured", "not configured"),
]


@pytest.mark.parametrize(("endpoint_id", "status", "code", "says"), FAILURES)
def test_upstream_failures_are_free(
    data_gw: Gateway, endpoint_id: str, status: int, code: str, says: str
) -> None:
    credit_id, key = data_gw.create_account(1)
    r = call(data_gw, key, endpoint_id, {"query": "anything"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    if status in (429, 503):
        assert r.headers["retry-after"] == "1"
    unchanged(data_gw, credit_id, NANOS)


def test_the_failed_call_held_the_price_while_it_ran(data_gw: Gateway) -> None:
    """A call whose upstream hangs holds its price until it times out, then releases it."""
    credit_id, key = data_gw.create_account(1)
    price = endpoint(data_gw, "test/exa-timeout").price
    with data_gw.client() as c:
        pending = c.build_request(
            "POST",
            "/v1/data/api/test/exa-timeout",
            json={"query": "slow"},
            headers={"Authorization": f"Bearer {key}"},
        )
        result: dict[str, int] = {}
        thread = threading.Thread(target=lambda: result.update(code=c.send(pending).status_code))
        thread.start()
        seen_reserved = 0
        for _ in range(40):
            seen_reserved = max(seen_reserved, data_gw.nanos(credit_id)[1])
            if seen_reserved or not thread.is_alive():
                break
            threading.Event().wait(0.02)
        thread.join(10)
    assert seen_reserved == price
    assert result["code"] == 504
    unchanged(data_gw, credit_id, NANOS)


def test_history_filters_data_calls_by_type(data_gw: Gateway) -> None:
    credit_id, key = data_gw.create_account(1)
    assert call(data_gw, key, "exa/answer", {"query": "q"}).status_code == 200
    assert call(data_gw, key, "test/exa-500", {"query": "q"}).status_code == 502
    with data_gw.client() as c:
        r = c.get(
            "/queries/history",
            params={"query_type": "data"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    assert [(row["model"], row["query_type"]) for row in rows] == [("exa/answer", "data")]
    assert len(data_rows(data_gw, credit_id)) == 1
