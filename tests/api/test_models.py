"""GET /v1/models: the catalog with sale prices, filtered by type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from farebox.sim.server import SimServer

from support import Gateway, database_url, running_gateway
from support import test_catalog as catalog_for


@pytest.fixture(scope="module")
def gateway(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The listing never touches the database: one SQLite-backed gateway is enough here."""
    tmp = tmp_path_factory.mktemp("models")
    with (
        database_url("sqlite", tmp) as url,
        running_gateway(url, catalog_for(sim.url)) as gw,
    ):
        yield gw


@pytest.fixture(scope="module")
def c(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def models(c: httpx.Client, path: str = "/v1/models", **params: str) -> list[dict[str, Any]]:
    r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    return list(body["data"])


def test_lists_priced_models_with_prices(c: httpx.Client) -> None:
    data = models(c)
    by_id = {m["id"]: m for m in data}
    # The test catalog grows with the gateway's modalities; these are the chat fixtures.
    assert set(by_id) >= {
        "test-model",
        "pricey-model",
        "fallback-model",
        "failing-model",
        "busy-model",
        "free-model",
    }
    assert "unpriced-model" not in by_id  # refused, never listed as free
    assert len(by_id) == len(data)  # ids are unique
    test = by_id["test-model"]
    assert test["object"] == "model"
    assert test["type"] == "chat"
    assert test["context_length"] == 100_000
    assert test["max_output_tokens"] == 4096
    assert test["pricing"]["input_per_1m_usd"] == 1
    assert test["pricing"]["output_per_1m_usd"] == 2
    # 1,000 tokens in and 500 out: $0.001 + $0.001
    assert test["average_cost_usd"] == 0.002
    assert test["prompts_per_usd"] == 500
    assert test["is_free"] is False
    assert isinstance(test["created"], int)
    free = by_id["free-model"]
    assert free["is_free"] is True
    assert free["average_cost_usd"] == 0
    assert free["prompts_per_usd"] is None
    assert by_id["pricey-model"]["pricing"]["output_per_1m_usd"] == 2000


def test_bare_path_and_no_auth_needed(c: httpx.Client) -> None:
    assert models(c, "/models") == models(c, "/v1/models")


def test_type_filter(c: httpx.Client) -> None:
    everything = models(c)
    types = {m["type"] for m in everything}
    assert "chat" in types
    assert models(c, type="all") == everything

    def of(*wanted: str) -> list[dict[str, Any]]:
        return [m for m in everything if m["type"] in wanted]

    for kind in ("chat", "embedding", "image", "video", "audio"):
        assert models(c, type=kind) == of(kind)
    assert models(c, type="CHAT") == of("chat")
    assert models(c, type="image,video") == of("image", "video")
    assert models(c, type="chat, embedding") == of("chat", "embedding")
    assert models(c, type="chat,all") == everything


def test_unknown_type_is_400(c: httpx.Client) -> None:
    r = c.get("/v1/models", params={"type": "hologram"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "type"
    assert "hologram" in err["message"] and "chat" in err["message"]
    assert c.post("/v1/models").status_code == 405


def test_retrieve_one_model_with_the_sdk(gateway: Gateway) -> None:
    """`client.models.retrieve(id)` answers the listing's entry; an alias or a dated id names
    the model under its catalog id; an unknown id is a 404 in our envelope."""
    client = openai.OpenAI(api_key="unused", base_url=gateway.url + "/v1", max_retries=0)
    listed = {m.id: m for m in client.models.list()}
    one = client.models.retrieve("test-model")
    assert one.model_dump() == listed["test-model"].model_dump()
    assert client.models.retrieve("claude-sonnet-5-5").id == "claude-test"  # an alias
    assert client.models.retrieve("claude-test-20250101").id == "claude-test"  # a dated id
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    error = missing.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found"
    assert "no-such-model" in error["message"]
    with httpx.Client(base_url=gateway.url) as c:
        assert c.get("/models/test-model").json()["id"] == "test-model"
        assert c.get("/v1/models/unpriced-model").status_code == 400  # listed nowhere, refused
