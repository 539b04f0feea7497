"""Every data endpoint, called with a funded key against the simulator: the provider's answer
comes back as it was sent, and the catalog price is what is charged and what the history row
says; an empty result is charged too."""

from __future__ import annotations

from typing import Any

import pytest

from farebox.money import format_usd

from data_support import SAMPLES, call, data_rows, endpoint, upstream_requests
from support import NANOS, Gateway


def test_samples_cover_every_shipped_endpoint(data_gw: Gateway) -> None:
    shipped = {e for e in data_gw.services.data.catalog.endpoints if not e.startswith("test/")}
    assert shipped == set(SAMPLES)


@pytest.mark.parametrize("endpoint_id", sorted(SAMPLES))
def test_endpoint_answers_and_charges_its_catalog_price(
    data_gw: Gateway, sim: Any, endpoint_id: str
) -> None:
    params, shows = SAMPLES[endpoint_id]
    price = endpoint(data_gw, endpoint_id).price
    credit_id, key = data_gw.create_account(1)
    before = upstream_requests(sim)
    r = call(data_gw, key, endpoint_id, params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert shows(r.json()), r.text
    assert r.headers["x-farebox-cost"] == format_usd(price)
    assert upstream_requests(sim) - before >= 1
    assert data_gw.nanos(credit_id) == (NANOS - price, 0)
    assert data_rows(data_gw, credit_id) == [("data", endpoint_id, price, "api")]
    assert data_gw.history_total_nanos(credit_id) == price
    report = data_gw.check()
    assert report.ok, report.problems


EMPTY_RESULTS = [
    ("google-maps/text-search/partial", {"textQuery": "noresults anywhere"}, lambda b: b == {}),
    ("apollo/people-search", {"q_keywords": "noresults"}, lambda b: b["people"] == []),
    (
        "exa/search",
        {"query": "anything", "includeDomains": ["nothing.example"]},
        lambda b: b["results"] == [],
    ),
    ("whitepages/person-search", {"name": "Noresults Person"}, lambda b: b == []),
    ("x/user", {"username": "nobody_here"}, lambda b: "data" not in b and b["errors"]),
]


@pytest.mark.parametrize(("endpoint_id", "params", "is_empty"), EMPTY_RESULTS)
def test_an_empty_result_is_still_charged(
    data_gw: Gateway, endpoint_id: str, params: dict[str, Any], is_empty: Any
) -> None:
    """The provider charged for the lookup whatever it found: so is the customer."""
    price = endpoint(data_gw, endpoint_id).price
    credit_id, key = data_gw.create_account(1)
    r = call(data_gw, key, endpoint_id, params)
    assert r.status_code == 200, r.text
    assert is_empty(r.json())
    assert data_gw.nanos(credit_id) == (NANOS - price, 0)
    assert data_rows(data_gw, credit_id) == [("data", endpoint_id, price, "api")]
    assert data_gw.check().ok


def test_get_endpoint_takes_repeated_names_as_an_array(data_gw: Gateway) -> None:
    credit_id, key = data_gw.create_account(1)
    with data_gw.client() as c:
        r = c.get(
            "/v1/data/x/user-posts?user_id=42&exclude=retweets&exclude=replies&max_results=5",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 5
    assert data_rows(data_gw, credit_id) == [
        ("data", "x/user-posts", endpoint(data_gw, "x/user-posts").price, "api")
    ]


def test_api_key_header_works_like_bearer(data_gw: Gateway) -> None:
    credit_id, key = data_gw.create_account(1)
    with data_gw.client() as c:
        r = c.post("/v1/data/api/exa/answer", json={"query": "why?"}, headers={"api-key": key})
    assert r.status_code == 200, r.text
    assert data_gw.nanos(credit_id)[0] == NANOS - endpoint(data_gw, "exa/answer").price


def test_the_request_id_goes_to_the_data_provider_and_back(data_gw: Gateway, sim: Any) -> None:
    """The customer's X-Request-Id (or ours) reaches the provider's logs, as for chat."""
    _, key = data_gw.create_account(1)
    path = endpoint(data_gw, "exa/search").public_path
    with data_gw.client() as c:
        r = c.post(
            path,
            json={"query": "pay per query", "numResults": 1},
            headers={"Authorization": f"Bearer {key}", "X-Request-Id": "data-trace-1"},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "data-trace-1"
    assert sim.state.request_ids[-1] == "data-trace-1"
