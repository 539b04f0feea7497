"""Embeddings through the official SDK: float and base64, dimensions, cost, bad input."""

from __future__ import annotations

import base64
import struct

import httpx
import openai
import pytest

from media_support import cost_nanos, query_rows, sdk, spent
from support import NANOS, Gateway


def post(gw: Gateway, key: str, body: dict[str, object]) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/embeddings", json=body, headers={"Authorization": f"Bearer {key}"})


def test_float_embedding_single_string(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    response = sdk(media_gw, key).embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small",
        input="The quick brown fox jumps over the lazy dog",
        encoding_format="float",
    )
    result = response.parse()
    assert len(result.data) == 1
    vector = result.data[0].embedding
    assert len(vector) == 1536
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-6
    assert result.usage.prompt_tokens == 9
    cost = cost_nanos(result.model_extra["cost"])  # type: ignore[index]
    assert cost == 9 * 100_000  # 9 tokens at $100 per 1M
    assert response.headers["x-farebox-cost"]
    assert spent(media_gw, credit_id, NANOS) == cost


def test_base64_list_and_dimensions(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    client = sdk(media_gw, key)
    texts = ["First document to embed", "Second document", "Third"]
    result = client.embeddings.create(
        model="text-embedding-3-small", input=texts, dimensions=256, encoding_format="base64"
    )
    assert [d.index for d in result.data] == [0, 1, 2]
    # Asking for base64, the SDK hands back the raw base64 string: decode it ourselves.
    raw = result.data[0].embedding
    assert isinstance(raw, str)
    floats = struct.unpack("<256f", base64.b64decode(raw))
    assert abs(sum(v * v for v in floats) - 1.0) < 1e-5
    # The SDK's default (no encoding_format) asks for base64 and decodes it to floats.
    default = client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    assert len(default.data[0].embedding) == 1536
    total = cost_nanos(result.usage.model_extra["cost"])  # type: ignore[index]
    total += cost_nanos(default.usage.model_extra["cost"])  # type: ignore[index]
    assert spent(media_gw, credit_id, NANOS) == total


def test_fallback_route_and_failure_is_free(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    ok = post(media_gw, key, {"model": "fallback-embed", "input": "hello"})
    assert ok.status_code == 200, ok.text
    failed = post(media_gw, key, {"model": "failing-embed", "input": "hello"})
    assert failed.status_code in (502, 503)
    assert "Nothing was charged" in failed.json()["error"]["message"]
    assert spent(media_gw, credit_id, NANOS) == cost_nanos(ok.json()["cost"])


def test_history_row_is_embedding(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "fallback-embed", "input": "row"})
    assert r.status_code == 200
    assert query_rows(media_gw, credit_id) == [
        ("embedding", "fallback-embed", cost_nanos(r.json()["cost"]))
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "openai/text-embedding-3-small"}, "input"),
        ({"model": "openai/text-embedding-3-small", "input": ""}, "input"),
        ({"model": "openai/text-embedding-3-small", "input": [1, "a"]}, "input"),
        (
            {"model": "openai/text-embedding-3-small", "input": "x", "dimensions": 5000},
            "dimensions",
        ),
        ({"model": "fallback-embed", "input": "x", "dimensions": 10}, "dimensions"),
        (
            {"model": "openai/text-embedding-3-small", "input": "x", "encoding_format": "hex"},
            "encoding_format",
        ),
        ({"input": "x"}, "model"),
    ],
)
def test_bad_input_is_400_and_free(media_gw: Gateway, body: dict[str, object], param: str) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert spent(media_gw, credit_id, NANOS) == 0


def test_unknown_model_404_and_no_balance_402(media_gw: Gateway) -> None:
    _credit_id, key = media_gw.create_account(0)
    assert post(media_gw, key, {"model": "nope", "input": "x"}).status_code == 404
    r = post(media_gw, key, {"model": "openai/text-embedding-3-small", "input": "x"})
    assert r.status_code == 402
    with pytest.raises(openai.APIStatusError):
        sdk(media_gw, key).embeddings.create(model="text-embedding-3-small", input="x")


def test_wrong_model_type_names_it_with_the_right_article(media_gw: Gateway) -> None:
    """ "is an embedding model", "is an image model": never "a embedding"."""
    credit_id, key = media_gw.create_account(1)
    with media_gw.client() as c:
        chat = c.post(
            "/v1/chat/completions",
            json={
                "model": "text-embedding-3-small",
                "messages": [{"role": "user", "content": "x"}],
            },
            headers={"Authorization": f"Bearer {key}"},
        )
    assert chat.status_code == 400, chat.text
    assert "is an embedding model, not a chat model" in chat.json()["error"]["message"]
    wrong = post(media_gw, key, {"model": "sim-image", "input": "x"})
    assert wrong.status_code == 400, wrong.text
    assert "'sim-image' is an image model and cannot be used" in wrong.json()["error"]["message"]
    assert spent(media_gw, credit_id, NANOS) == 0
