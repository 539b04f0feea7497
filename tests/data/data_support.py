"""The data test catalog (the shipped one on the simulator, plus broken copies of Exa search),
a sample request for every shipped endpoint, and helpers to call and to count upstream calls."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy import select

from farebox.data.demo import sim_data_dict
from farebox.data.loader import data_catalog_from_dict
from farebox.data.model import DataCatalog, Endpoint
from farebox.db.schema import queries
from farebox.sim.server import SimServer

from support import Gateway

Check = Callable[[Any], bool]

# A request for every shipped endpoint that the simulator answers, and what its answer shows.
SAMPLES: Mapping[str, tuple[dict[str, Any], Check]] = {
    "google-maps/text-search/full": (
        {"textQuery": "coffee in Seattle", "pageSize": 3},
        lambda b: len(b["places"]) == 3 and "reviews" in b["places"][0],
    ),
    "google-maps/text-search/partial": (
        {"textQuery": "coffee in Seattle", "pageSize": 3, "openNow": True},
        lambda b: len(b["places"]) == 3 and "reviews" not in b["places"][0],
    ),
    "google-maps/nearby-search/full": (
        {
            "locationRestriction": {
                "circle": {"center": {"latitude": 47.6, "longitude": -122.3}, "radius": 1000}
            },
            "includedTypes": ["cafe"],
            "maxResultCount": 2,
        },
        lambda b: len(b["places"]) == 2 and "rating" in b["places"][0],
    ),
    "google-maps/nearby-search/partial": (
        {
            "locationRestriction": {
                "circle": {"center": {"latitude": 47.6, "longitude": -122.3}, "radius": 500}
            },
            "maxResultCount": 4,
        },
        lambda b: len(b["places"]) == 4 and "rating" not in b["places"][0],
    ),
    "google-maps/place-details/full": (
        {"placeId": "ChIJN1t_tDeuEmsRUsoyG83frY4"},
        lambda b: b["id"] == "ChIJN1t_tDeuEmsRUsoyG83frY4" and "reviews" in b,
    ),
    "google-maps/place-details/partial": (
        {"placeId": "ChIJN1t_tDeuEmsRUsoyG83frY4", "languageCode": "en"},
        lambda b: "displayName" in b and "rating" not in b,
    ),
    "apollo/people-search": (
        {"q_keywords": "software engineer", "person_locations": ["San Francisco"], "per_page": 5},
        lambda b: len(b["people"]) == 5 and b["pagination"]["per_page"] == 5,
    ),
    "apollo/org-search": (
        {
            "q_organization_keyword_tags": ["fintech"],
            "organization_num_employees_ranges": ["11,50"],
        },
        lambda b: len(b["organizations"]) == 10,
    ),
    "apollo/people-enrich": ({"email": "ada@example.com"}, lambda b: "@" in b["person"]["email"]),
    "apollo/org-enrich": (
        {"domain": "stripe.com"},
        lambda b: b["organization"]["primary_domain"] == "stripe.com",
    ),
    "exa/search": (
        {"query": "pay per query", "numResults": 3, "text": True},
        lambda b: len(b["results"]) == 3 and "text" in b["results"][0],
    ),
    "exa/find-similar": (
        {"url": "https://example.com/a", "numResults": 2},
        lambda b: len(b["results"]) == 2,
    ),
    "exa/contents": (
        {"urls": ["https://example.com/a", "https://example.org/b"]},
        lambda b: [r["text"] for r in b["results"]] and len(b["statuses"]) == 2,
    ),
    "exa/answer": (
        {"query": "What is farebox?", "text": True},
        lambda b: b["answer"] and "text" in b["citations"][0],
    ),
    "firecrawl/scrape": (
        {"url": "https://example.com/page", "formats": ["markdown", "links"]},
        lambda b: b["success"] and b["data"]["markdown"] and b["data"]["links"],
    ),
    "firecrawl/search": ({"query": "farebox", "limit": 3}, lambda b: len(b["data"]["web"]) == 3),
    "clado/contacts-enrich": (
        {"linkedin_url": "https://www.linkedin.com/in/ada", "phone_enrichment": True},
        lambda b: {c["type"] for c in b["data"][0]["contacts"]} == {"email", "phone"},
    ),
    "clado/linkedin-scrape": (
        {"linkedin_url": "https://www.linkedin.com/in/ada"},
        lambda b: b["data"]["profile"]["full_name"],
    ),
    "serper/news": (
        {"q": "bitcoin", "num": 5, "tbs": "qdr:d"},
        lambda b: len(b["news"]) == 5,
    ),
    "serper/shopping": ({"q": "headphones", "num": 3}, lambda b: len(b["shopping"]) == 3),
    "reddit/search": (
        {"query": "python", "subreddit": "programming", "limit": 3},
        lambda b: (
            b["kind"] == "Listing"
            and b["data"]["children"][0]["data"]["subreddit"] == "programming"
        ),
    ),
    "reddit/post-comments": (
        {"postUrl": "https://www.reddit.com/r/programming/comments/abc123/some_title/"},
        lambda b: b[0]["data"]["children"][0]["data"]["id"] == "abc123",
    ),
    "whitepages/person-search": (
        {"name": "John Smith", "city": "Seattle", "state_code": "WA"},
        lambda b: len(b) == 2 and b[0]["name"] == "John Smith",
    ),
    "whitepages/property-search": (
        {"street": "123 Main St", "city": "Seattle", "state_code": "WA"},
        lambda b: b["result"]["address"]["street"] == "123 Main St",
    ),
    "hunter/email-verifier": (
        {"email": "ada@example.com"},
        lambda b: b["data"]["result"] == "deliverable",
    ),
    "influencer/enrich-by-email": (
        {"email": "creator@example.com"},
        lambda b: "instagram" in b["result"],
    ),
    "influencer/enrich-by-social": (
        {"platform": "tiktok", "handle": "@creator"},
        lambda b: b["result"]["tiktok"]["username"] == "creator",
    ),
    "x/user": ({"username": "nasa"}, lambda b: b["data"]["username"] == "nasa"),
    "x/user-posts": ({"user_id": "11348282", "max_results": 5}, lambda b: len(b["data"]) == 5),
    "x/search": ({"query": "moon landing"}, lambda b: b["meta"]["result_count"] == 10),
    "x/post": ({"id": "1800000000000000001"}, lambda b: b["data"]["id"] == "1800000000000000001"),
}

# Copies of exa/search whose upstream fails in one way each (path /api/test/{name}).
BROKEN = {
    "exa-500": "status=500",
    "exa-429": "status=429",
    "exa-timeout": "timeout",
}


def data_test_dict(sim_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    data, env = sim_data_dict(sim_url)
    exa = data["upstreams"]["exa"]
    search = data["endpoints"]["exa/search"]
    extra: dict[str, dict[str, Any]] = {}
    for name, fault in BROKEN.items():
        extra[name] = {**copy.deepcopy(exa), "base_url": f"{sim_url}/sim/{fault}/exa"}
    extra["exa-timeout"]["timeout_s"] = 0.5
    extra["exa-nokey"] = {"base_url": f"{sim_url}/exa"}  # the provider answers 401
    extra["exa-unset"] = {  # the operator never set the key
        **copy.deepcopy(exa),
        "auth": {"header": "x-api-key", "env": "FAREBOX_TEST_UNSET_KEY"},
    }
    for name, upstream in extra.items():
        data["upstreams"][name] = upstream
        endpoint = copy.deepcopy(search)
        endpoint["path"] = f"/api/test/{name}"
        endpoint["upstream"]["name"] = name
        data["endpoints"][f"test/{name}"] = endpoint
    return data, env


def data_test_catalog(sim_url: str) -> DataCatalog:
    return data_catalog_from_dict(*data_test_dict(sim_url))


def endpoint(gw: Gateway, endpoint_id: str) -> Endpoint:
    found: Endpoint = gw.services.data.catalog.endpoints[endpoint_id]
    return found


def call(
    gw: Gateway, key: str | None, endpoint_id: str, params: Mapping[str, Any]
) -> httpx.Response:
    """Call a data endpoint as a customer would: JSON body for POST, query string for GET."""
    spec = endpoint(gw, endpoint_id)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with gw.client() as c:
        if spec.method == "GET":
            return c.get(spec.public_path, params=dict(params), headers=headers)
        return c.post(spec.public_path, json=dict(params), headers=headers)


def upstream_requests(sim: SimServer) -> int:
    """How many requests the simulator has answered (every provider counts)."""
    return int(sim.state.stats.snapshot()["requests"])  # type: ignore[call-overload]


def data_rows(gw: Gateway, credit_id: str) -> list[tuple[str, str, int, str]]:
    """(query_type, model, price, query_source) of the account's history rows, oldest first."""
    gw.loop.run(gw.services.ledger.flush())

    def read(conn: Any) -> list[tuple[str, str, int, str]]:
        rows = conn.execute(
            select(queries.c.query_type, queries.c.model, queries.c.price, queries.c.query_source)
            .where(queries.c.account_id == gw.account_id(credit_id))
            .order_by(queries.c.id)
        )
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    return list(gw.loop.run(gw.services.db.read(read)))


def unchanged(gw: Gateway, credit_id: str, granted_nanos: int) -> None:
    """Nothing charged, nothing held, no history row, the ledger clean."""
    assert gw.nanos(credit_id) == (granted_nanos, 0)
    assert data_rows(gw, credit_id) == []
    report = gw.check()
    assert report.ok, report.problems
