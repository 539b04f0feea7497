"""GET /v1/data/endpoints: no auth, every endpoint (PPQ's 27 and the /x family) with provider,
path, method, price and parameters, as the catalog has them."""

from __future__ import annotations

import httpx

from farebox.money import format_usd, nanos_to_usd

from support import Gateway

PPQ_ENDPOINTS = {
    ("POST", "/api/google-maps/text-search/full"),
    ("POST", "/api/google-maps/text-search/partial"),
    ("POST", "/api/google-maps/nearby-search/full"),
    ("POST", "/api/google-maps/nearby-search/partial"),
    ("GET", "/api/google-maps/place-details/full"),
    ("GET", "/api/google-maps/place-details/partial"),
    ("POST", "/api/apollo/people-search"),
    ("POST", "/api/apollo/org-search"),
    ("POST", "/api/apollo/people-enrich"),
    ("POST", "/api/apollo/org-enrich"),
    ("POST", "/api/exa/search"),
    ("POST", "/api/exa/find-similar"),
    ("POST", "/api/exa/contents"),
    ("POST", "/api/exa/answer"),
    ("POST", "/api/firecrawl/scrape"),
    ("POST", "/api/firecrawl/search"),
    ("POST", "/api/clado/contacts-enrich"),
    ("POST", "/api/clado/linkedin-scrape"),
    ("POST", "/api/serper/news"),
    ("POST", "/api/serper/shopping"),
    ("POST", "/api/reddit/search"),
    ("POST", "/api/reddit/post-comments"),
    ("POST", "/api/whitepages/person-search"),
    ("POST", "/api/whitepages/property-search"),
    ("POST", "/api/hunter/email-verifier"),
    ("POST", "/api/influencer/enrich-by-email"),
    ("POST", "/api/influencer/enrich-by-social"),
}
X_FAMILY = {("GET", "/x/user"), ("GET", "/x/user-posts"), ("GET", "/x/search"), ("GET", "/x/post")}


def test_listing_needs_no_auth_and_has_every_endpoint(data_gw: Gateway) -> None:
    r = httpx.get(data_gw.url + "/v1/data/endpoints", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    listed = {(e["method"], e["path"].removeprefix("/v1/data")) for e in body["data"]}
    assert len(PPQ_ENDPOINTS) == 27
    assert listed >= PPQ_ENDPOINTS | X_FAMILY


def test_listing_shows_the_catalog_price_and_parameters(data_gw: Gateway) -> None:
    catalog = data_gw.services.data.catalog
    body = httpx.get(data_gw.url + "/v1/data/endpoints", timeout=30).json()
    for entry in body["data"]:
        spec = catalog.endpoints[entry["id"]]
        assert entry["provider"] == spec.provider
        assert entry["path"] == spec.public_path and entry["method"] == spec.method
        assert entry["price"] == nanos_to_usd(spec.price)
        assert entry["price_usd"] == format_usd(spec.price)
        assert entry["description"]
        assert [p["name"] for p in entry["parameters"]] == [p.name for p in spec.params]
        for param in entry["parameters"]:
            assert set(param) >= {"name", "type", "required", "description"}
            assert isinstance(param["required"], bool) and param["description"]
    by_id = {e["id"]: e for e in body["data"]}
    query = by_id["exa/search"]["parameters"][0]
    assert query == {
        "name": "query",
        "type": "string",
        "required": True,
        "description": "What to search for.",
        "max_length": 2000,
    }
    assert by_id["exa/search"]["available"] is True
    assert by_id["test/exa-unset"]["available"] is False
    assert by_id["apollo/people-enrich"]["one_of"] == [
        ["email", "linkedin_url", "id", "name", "last_name"]
    ]
