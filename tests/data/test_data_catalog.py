"""The data catalog: the shipped file (every price sourced, cost plus margin), an operator's file
merged over it (prices changed, endpoints added and removed), keys from the environment, and
bad files refused with a message that names the entry and the field."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from farebox.catalog.errors import CatalogError
from farebox.data.loader import data_catalog_from_dict, load_data_catalog
from farebox.sim.server import SimServer

from data_support import call, data_rows
from support import NANOS, database_url, running_gateway
from support import test_catalog as chat_catalog

SHIPPED_API_PROVIDERS = {
    "Google Maps",
    "Apollo",
    "Exa",
    "Firecrawl",
    "Clado",
    "Serper",
    "Reddit",
    "Whitepages",
    "Hunter",
    "Influencer",
}


def test_shipped_catalog_sources_every_price() -> None:
    catalog = load_data_catalog(env={})
    api = [e for e in catalog.endpoints.values() if e.path.startswith("/api/")]
    x_family = [e for e in catalog.endpoints.values() if e.path.startswith("/x/")]
    assert len(api) == 27 and len(x_family) == 4
    assert {e.provider for e in api} == SHIPPED_API_PROVIDERS
    for endpoint in catalog.endpoints.values():
        assert endpoint.cost is not None and endpoint.cost > 0, endpoint.id
        assert endpoint.cost_source, endpoint.id
        # the default margin: 20 % over the provider's price, rounded up to a nanodollar
        assert endpoint.price == math.ceil(endpoint.cost * 12 / 10), endpoint.id
        assert endpoint.description and endpoint.params


def test_shipped_catalog_says_which_prices_are_estimates() -> None:
    catalog = load_data_catalog(env={})
    estimated = {e.id for e in catalog.endpoints.values() if e.cost_source.startswith("estimate")}
    assert estimated == {
        "apollo/people-search",
        "apollo/org-search",
        "apollo/people-enrich",
        "apollo/org-enrich",
        "serper/shopping",
        "whitepages/person-search",
        "whitepages/property-search",
        "hunter/email-verifier",
        "influencer/enrich-by-email",
        "influencer/enrich-by-social",
    }


def test_keys_come_from_the_environment() -> None:
    without = load_data_catalog(env={})
    assert not without.upstreams["exa"].auth.configured
    assert not without.upstreams["reddit"].auth.configured
    env = {"EXA_API_KEY": "k1", "REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "s"}
    withkeys = load_data_catalog(env=env)
    assert withkeys.upstreams["exa"].auth.key == "k1"
    assert withkeys.upstreams["reddit"].auth.configured
    assert "k1" not in repr(withkeys.upstreams["exa"])  # never in a log line


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "data-catalog.json"
    path.write_bytes(orjson.dumps(data))
    return path


def test_operator_file_changes_prices_adds_and_removes(tmp_path: Path) -> None:
    operator = {
        "defaults": {"margin": "0.5"},
        "upstreams": {"acme": {"base_url": "https://api.acme.example/v1/"}},
        "endpoints": {
            "exa/search": {"price_usd": "0.05"},
            "acme/lookup": {
                "provider": "Acme",
                "path": "/api/acme/lookup",
                "description": "A lookup.",
                "parameters": [{"name": "q", "type": "string", "required": True}],
                "upstream": {"name": "acme", "method": "GET", "path": "/lookup"},
                "cost_usd": "0.01",
                "cost_source": "our contract with Acme",
            },
        },
        "remove": ["whitepages/property-search"],
    }
    catalog = load_data_catalog(_write(tmp_path, operator), env={})
    assert catalog.endpoints["exa/search"].price == 50_000_000
    assert catalog.endpoints["exa/answer"].price == 7_500_000  # $0.005 at the new 50 % margin
    added = catalog.endpoints["acme/lookup"]
    assert added.price == 15_000_000 and added.method == "POST"
    assert added.params[0].location == "query"  # a GET upstream takes it in the query string
    assert catalog.upstreams["acme"].base_url == "https://api.acme.example/v1"
    assert "whitepages/property-search" not in catalog.endpoints


def test_the_env_variable_names_the_operator_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"endpoints": {"exa/answer": {"price_usd": "1"}}})
    catalog = load_data_catalog(env={"FAREBOX_DATA_CATALOG": str(path)})
    assert catalog.endpoints["exa/answer"].price == NANOS


ENDPOINT = {
    "provider": "P",
    "path": "/api/p/q",
    "parameters": [{"name": "q", "type": "string"}],
    "upstream": {"name": "u", "method": "POST", "path": "/q"},
    "price_usd": "0.01",
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"upstream": {"name": "nope", "path": "/q"}}, "no upstream named 'nope'"),
        ({"price_usd": None}, "has no price"),
        ({"price_usd": "-1"}, "must not be negative"),
        ({"upstream": {"name": "u", "path": "/q/{id}"}}, "fills {id}"),
        ({"upstream": {"name": "u", "path": "/../admin"}}, "upstream.path"),
        ({"upstream": {"name": "u", "method": "GET", "path": "/q", "body": {"a": 1}}}, "body"),
        ({"parameters": [{"name": "q", "type": "string", "pattern": "("}]}, "pattern"),
        ({"parameters": [{"name": "q", "type": "blob"}]}, "unknown type"),
        ({"parameters": [{"name": "q", "type": "string"}] * 2}, "parameter twice"),
        ({"path": "/endpoints"}, "not a usable path"),
        ({"path": "/api/../x"}, "not a usable path"),
        ({"method": "DELETE"}, "must be one of GET, POST"),
        ({"one_of": [["z"]]}, "unknown parameters"),
        ({"cost": "0.01"}, "unknown field"),
    ],
)
def test_bad_catalog_entries_are_refused_by_name(change: dict[str, Any], says: str) -> None:
    entry = {k: v for k, v in {**ENDPOINT, **change}.items() if v is not None}
    data = {"upstreams": {"u": {"base_url": "https://u.example"}}, "endpoints": {"p/q": entry}}
    with pytest.raises(CatalogError) as caught:
        data_catalog_from_dict(data, env={}, source="op.json")
    assert "op.json" in str(caught.value) and says in str(caught.value)


def test_two_endpoints_on_one_path_are_refused() -> None:
    data = {
        "upstreams": {"u": {"base_url": "https://u.example"}},
        "endpoints": {"a": ENDPOINT, "b": ENDPOINT},
    }
    with pytest.raises(CatalogError, match="also endpoint 'a'"):
        data_catalog_from_dict(data, env={})


def test_operator_catalog_file_is_served_by_the_gateway(
    db_kind: str, sim: SimServer, tmp_path: Path
) -> None:
    """FAREBOX_DATA_CATALOG adds an endpoint and changes a price on a live gateway; both are
    listed and charged at the operator's price, and the ledger stays clean."""
    operator = {
        "upstreams": {
            "exa": {"base_url": f"{sim.url}/exa"},
            "news-feed": {
                "base_url": f"{sim.url}/serper",
                "auth": {"header": "X-API-KEY", "env": "NEWS_FEED_KEY"},
            },
        },
        "endpoints": {
            "exa/search": {"price_usd": "0.05"},
            "feed/headlines": {
                "provider": "Our news feed",
                "path": "/api/feed/headlines",
                "description": "Headlines for a topic.",
                "parameters": [
                    {"name": "topic", "type": "string", "required": True, "to": "q"},
                    {"name": "num", "type": "integer", "minimum": 1, "maximum": 5},
                ],
                "upstream": {"name": "news-feed", "method": "POST", "path": "/news"},
                "cost_usd": "0.01",
                "cost_source": "our contract",
                "margin": "1.0",
            },
        },
    }
    env = {
        "FAREBOX_DATA_CATALOG": str(_write(tmp_path, operator)),
        "EXA_API_KEY": "k",
        "NEWS_FEED_KEY": "k",
    }
    with (
        database_url(db_kind, tmp_path) as url,
        running_gateway(url, chat_catalog(sim.url), extra_env=env) as gw,
    ):
        listed = {e["id"]: e for e in gw.client().get("/v1/data/endpoints").json()["data"]}
        assert listed["exa/search"]["price_usd"] == "0.05"
        assert listed["feed/headlines"]["price_usd"] == "0.02"
        assert listed["feed/headlines"]["available"] is True
        assert listed["google-maps/text-search/full"]["available"] is False  # no key set
        credit_id, key = gw.create_account(1)
        r = call(gw, key, "feed/headlines", {"topic": "farebox", "num": 3})
        assert r.status_code == 200, r.text
        assert len(r.json()["news"]) == 3
        assert r.headers["x-farebox-cost"] == "0.02"
        r = call(gw, key, "exa/search", {"query": "farebox"})
        assert r.status_code == 200, r.text
        assert data_rows(gw, credit_id) == [
            ("data", "feed/headlines", 20_000_000, "api"),
            ("data", "exa/search", 50_000_000, "api"),
        ]
        assert gw.nanos(credit_id) == (NANOS - 70_000_000, 0)
        r = call(gw, key, "google-maps/place-details/full", {"placeId": "ChIJx"})
        assert r.status_code == 501, r.text
        assert gw.check().ok
