"""Bad data calls are refused before any hold or upstream call, in our error envelope, and
change no balance: bad parameters (400), unknown endpoints (404), wrong methods (405), bodies
too large (413), no key (401 without a Lightning backend), a key whose limit is below the price and an
account that cannot pay (402)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from data_support import call, endpoint, unchanged, upstream_requests
from support import NANOS, Gateway

PLACES_CIRCLE = {"circle": {"center": {"latitude": 1, "longitude": 2}, "radius": 10}}

BAD_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    ("exa/search", {}, "query"),  # required
    ("exa/search", {"query": ""}, "query"),  # empty
    ("exa/search", {"query": 42}, "query"),  # wrong type
    ("exa/search", {"query": "x" * 2001}, "query"),  # too long
    ("exa/search", {"query": "a\x00b"}, "query"),  # control character
    ("exa/search", {"query": "q", "numResults": 11}, "numResults"),  # above the priced 10
    ("exa/search", {"query": "q", "numResults": 2.5}, "numResults"),  # not whole
    ("exa/search", {"query": "q", "numResults": True}, "numResults"),  # a boolean is no number
    ("exa/search", {"query": "q", "type": "deep"}, "type"),  # a dearer search type
    ("exa/search", {"query": "q", "includeDomains": ["a.com"] * 51}, "includeDomains"),
    ("exa/search", {"query": "q", "includeDomains": "a.com"}, "includeDomains"),
    ("exa/search", {"query": "q", "summary": True}, "summary"),  # unknown: never passed on
    ("exa/search", {"query": "q", "startPublishedDate": "yesterday"}, "startPublishedDate"),
    ("exa/contents", {"urls": []}, "urls"),  # at least one
    ("exa/contents", {"urls": ["https://a.com"] * 6}, "urls"),  # at most five
    ("exa/contents", {"urls": ["file:///etc/passwd"]}, "urls"),  # http(s) only
    ("exa/contents", {"urls": ["http://"]}, "urls"),  # a host
    ("firecrawl/scrape", {"url": "javascript:alert(1)"}, "url"),
    ("firecrawl/scrape", {"url": "https://a.com", "formats": ["json"]}, "formats"),
    ("firecrawl/scrape", {"url": "https://a.com", "waitFor": 10**12}, "waitFor"),
    ("google-maps/text-search/full", {"textQuery": "q", "minRating": 5.5}, "minRating"),
    ("google-maps/nearby-search/full", {"locationRestriction": [1, 2]}, "locationRestriction"),
    (
        "google-maps/nearby-search/full",
        {"locationRestriction": {"circle": {"x": "y" * 2000}}},
        "locationRestriction",
    ),
    (
        "google-maps/nearby-search/full",
        {"locationRestriction": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}},
        "locationRestriction",
    ),
    (
        "google-maps/nearby-search/full",
        {"locationRestriction": PLACES_CIRCLE, "maxResultCount": 0},
        "maxResultCount",
    ),
    ("google-maps/place-details/full", {"placeId": "../../admin"}, "placeId"),
    ("google-maps/place-details/full", {"placeId": "ChIJ%2F"}, "placeId"),
    ("google-maps/place-details/full", {"placeId": "ChIJé"}, "placeId"),
    ("apollo/people-enrich", {"organization_name": "Acme"}, "email"),  # one of is required
    (
        "apollo/people-search",
        {"organization_num_employees_ranges": ["lots"]},
        "organization_num_employees_ranges",
    ),
    ("apollo/people-search", {"person_seniorities": ["emperor"]}, "person_seniorities"),
    ("apollo/people-search", {"per_page": 101}, "per_page"),
    ("reddit/post-comments", {"postUrl": "https://evil.example/r/a/comments/abc/"}, "postUrl"),
    ("reddit/search", {"query": "q", "subreddit": "a/../../b"}, "subreddit"),
    ("clado/linkedin-scrape", {"linkedin_url": "https://example.com/in/x"}, "linkedin_url"),
    ("whitepages/person-search", {"name": "A", "state_code": "wa"}, "state_code"),
    ("influencer/enrich-by-social", {"platform": "myspace", "handle": "x"}, "platform"),
    ("x/user", {"username": "has space"}, "username"),
    ("x/user", {"username": "x" * 16}, "username"),
    ("x/user-posts", {"user_id": "12", "max_results": "lots"}, "max_results"),
    ("x/user-posts", {"user_id": "12", "max_results": "99999999999999999999999"}, "max_results"),
    ("x/user-posts", {"user_id": "12", "max_results": "٣"}, "max_results"),  # a non-ASCII digit
    ("x/user-posts", {"user_id": "-1"}, "user_id"),
    ("x/user-posts", {"user_id": "1", "exclude": "pinned"}, "exclude"),
]


@pytest.mark.parametrize(("endpoint_id", "params", "param"), BAD_PARAMS)
def test_bad_parameters_are_400_before_any_upstream_call(
    data_gw: Gateway, sim: Any, endpoint_id: str, params: dict[str, Any], param: str
) -> None:
    credit_id, key = data_gw.create_account(1)
    before = upstream_requests(sim)
    r = call(data_gw, key, endpoint_id, params)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    assert upstream_requests(sim) == before
    unchanged(data_gw, credit_id, NANOS)


def _raw(gw: Gateway, method: str, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with gw.client() as c:
        return c.request(method, path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


RAW_CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/v1/data/api/exa/search", {"content": b"{not json"}, 400),
    ("POST", "/v1/data/api/exa/search", {"content": b"[1, 2]"}, 400),
    ("POST", "/v1/data/api/exa/search", {"content": b'"text"'}, 400),
    ("POST", "/v1/data/api/exa/search", {"content": b"{" * 5000}, 400),
    ("POST", "/v1/data/api/exa/search", {"content": b'{"query": "q", "numResults": NaN}'}, 400),
    ("POST", "/v1/data/api/exa/search", {"content": b'{"query": "' + b"x" * 70_000 + b'"}'}, 413),
    ("POST", "/v1/data/api/nosuch/thing", {"json": {}}, 404),
    ("POST", "/v1/data/../v1/models", {"json": {}}, 404),
    ("GET", "/v1/data/api/exa/search", {"params": {"query": "q"}}, 405),
    ("POST", "/v1/data/x/user", {"json": {"username": "nasa"}}, 405),
    ("DELETE", "/v1/data/api/exa/search", {}, 405),
    ("GET", "/v1/data/x/user?username=a&username=b", {}, 400),
    ("GET", "/v1/data/x/user?" + "&".join(f"p{i}=1" for i in range(101)), {}, 400),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), RAW_CASES)
def test_malformed_requests_are_refused_before_any_upstream_call(
    data_gw: Gateway, sim: Any, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    credit_id, key = data_gw.create_account(1)
    before = upstream_requests(sim)
    r = _raw(data_gw, method, path, key, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]
    assert upstream_requests(sim) == before
    unchanged(data_gw, credit_id, NANOS)


def test_keyless_call_without_a_lightning_backend_is_401_and_calls_no_one(
    data_gw: Gateway, sim: Any
) -> None:
    """With no Lightning backend there is no pay-per-request (tests/pay402 has the 402 flow)."""
    before = upstream_requests(sim)
    for params in ({"q_keywords": "engineer"}, {"per_page": 1000}):
        r = call(data_gw, None, "apollo/people-search", params)
        assert r.status_code == 401, r.text
        assert "Missing API key" in r.json()["error"]["message"]
    assert upstream_requests(sim) == before


def test_unknown_key_is_401(data_gw: Gateway, sim: Any) -> None:
    before = upstream_requests(sim)
    r = call(data_gw, "sk-not-a-real-key", "exa/answer", {"query": "q"})
    assert r.status_code == 401, r.text
    assert upstream_requests(sim) == before


def test_key_limit_below_the_price_is_402(data_gw: Gateway, sim: Any) -> None:
    credit_id, _ = data_gw.create_account(5)
    with data_gw.client() as c:
        made = c.post(
            "/keys",
            json={"name": "capped", "usage_limit_usd": 0.1},
            headers={"x-credit-id": credit_id},
        )
    assert made.status_code == 201, made.text
    capped = made.json()["data"]["api_key"]
    assert endpoint(data_gw, "whitepages/person-search").price > 100_000_000
    before = upstream_requests(sim)
    r = call(data_gw, capped, "whitepages/person-search", {"name": "John Smith"})
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "key_limit_reached"
    assert upstream_requests(sim) == before
    unchanged(data_gw, credit_id, 5 * NANOS)
    cheap = call(data_gw, capped, "exa/answer", {"query": "q"})  # under the limit: served
    assert cheap.status_code == 200, cheap.text


def test_balance_below_the_price_is_402(data_gw: Gateway, sim: Any) -> None:
    credit_id, key = data_gw.create_account("0.1")
    before = upstream_requests(sim)
    r = call(data_gw, key, "clado/contacts-enrich", {"email": "a@b.co"})
    assert r.status_code == 402, r.text
    body = r.json()
    assert body["error"]["code"] == "insufficient_funds"
    assert body["available"] == 0.1
    assert upstream_requests(sim) == before
    unchanged(data_gw, credit_id, NANOS // 10)
