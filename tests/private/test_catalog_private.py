"""Private models in the catalog: PPQ's seven, one enclave route each, listed as private."""

from __future__ import annotations

from typing import Any

import pytest

from farebox.catalog import CatalogError, catalog_from_dict, load_catalog, models_payload

PPQ_PRIVATE = [
    "private/kimi-k2-5",
    "private/deepseek-r1-0528",
    "private/gpt-oss-120b",
    "private/llama3-3-70b",
    "private/qwen3-vl-30b",
    "private/glm-5-1",
    "private/gemma4-31b",
]


def test_the_shipped_catalog_sells_ppqs_private_models_through_an_enclave() -> None:
    catalog = load_catalog(env={})
    listed = {m["id"]: m for m in models_payload(catalog, "chat")["data"]}
    for model_id in PPQ_PRIVATE:
        model = catalog.resolve(model_id)
        assert model.private and model.type == "chat" and not model.is_free
        assert model.price.input > 0 and model.price.output > 0
        (route,) = model.routes
        assert catalog.providers[route.provider].kind == "ehbp"
        assert route.upstream_model == model_id.removeprefix("private/")
        entry = listed[model_id]
        assert entry["private"] is True
        assert entry["enclave_model"] == route.upstream_model
    assert {m.id for m in catalog.list() if m.private} == set(PPQ_PRIVATE)
    assert all("private" not in m for i, m in listed.items() if i not in PPQ_PRIVATE)
    assert catalog.resolve("private/qwen3-vl-30b").image_tokens == 16384


def _doc(provider: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    return {
        "providers": {
            "enclave": {"kind": "ehbp", "base_url": "https://enclave.test"},
            "plain": {"kind": "openai", "base_url": "https://api.test/v1"},
            "other": provider,
        },
        "models": {
            "private/x": {
                "provider": "T",
                "type": "chat",
                "context": 1000,
                "max_output": 100,
                "date_added": "2026-01-01",
                "price": {"input_per_1m": "1", "output_per_1m": "2"},
                "routes": [{"provider": "enclave", "model": "x"}],
                **model,
            }
        },
    }


@pytest.mark.parametrize(
    ("provider", "model", "problem"),
    [
        (
            {"kind": "openai", "base_url": "https://a.test"},
            {"routes": [{"provider": "enclave"}, {"provider": "plain"}]},
            "exactly one route",
        ),
        (
            {"kind": "openai", "base_url": "https://a.test", "usage_report": "tinfoil"},
            {},
            "only an 'ehbp' provider",
        ),
        (
            {"kind": "ehbp", "base_url": "https://a.test", "usage_report": "vllm"},
            {},
            "unknown convention",
        ),
        (
            {"kind": "ehbp", "base_url": "https://a.test", "attestation_url": "ftp://x"},
            {},
            "attestation_url",
        ),
        (
            {"kind": "openai", "base_url": "https://a.test"},
            {"image_tokens": "many"},
            "image_tokens",
        ),
        (
            {"kind": "openai", "base_url": "https://a.test"},
            {"type": "embedding"},
            "chat models only",
        ),
    ],
)
def test_catalog_mistakes_about_enclaves_are_refused(
    provider: dict[str, Any], model: dict[str, Any], problem: str
) -> None:
    with pytest.raises(CatalogError, match=problem):
        catalog_from_dict(_doc(provider, model), env={})
