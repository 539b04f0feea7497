"""Catalog lookups: ids, aliases, unknown and unpriced models, type filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from farebox.catalog import (
    Catalog,
    CatalogError,
    CatalogModel,
    Route,
    TokenPrices,
    UnpricedEntry,
    catalog_from_dict,
    parse_type_filter,
)
from farebox.errors import InvalidRequest, UnknownModel, UnpricedModel


def _model(model_id: str, aliases: tuple[str, ...] = (), type: str = "chat") -> CatalogModel:
    return CatalogModel(
        id=model_id,
        name=model_id,
        provider="Acme",
        type=type,
        context=1000,
        max_output=100,
        date_added="2025-01-01",
        tokenizer="o200k_base",
        price=TokenPrices(1, 2),
        cost=None,
        routes=(Route("up", model_id),),
        aliases=aliases,
    )


def test_resolve_by_id_and_alias(doc: dict[str, Any], at: datetime) -> None:
    catalog = catalog_from_dict(doc, {}, at=at)
    assert catalog.resolve("alpha").id == "alpha"
    assert catalog.resolve("acme/alpha") is catalog.resolve("alpha")


def test_unknown_model_points_at_the_models_list(doc: dict[str, Any], at: datetime) -> None:
    catalog = catalog_from_dict(doc, {}, at=at)
    with pytest.raises(UnknownModel) as info:
        catalog.resolve("gpt-7")
    assert "'gpt-7'" in info.value.message and "GET /v1/models" in info.value.message
    assert info.value.param == "model" and info.value.status == 404
    with pytest.raises(UnknownModel):
        catalog.resolve("ALPHA")  # ids are exact


def test_unpriced_model_is_refused_and_not_listed(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["alpha"].pop("price")
    doc["models"]["beta"]["cost_ref"] = {"provider": "openai", "model": "no-such-model"}
    catalog = catalog_from_dict(doc, {}, at=at)
    assert set(catalog.unpriced) == {"alpha", "beta"}
    assert "alpha" not in catalog.models
    for name in ("alpha", "acme/alpha", "beta"):
        with pytest.raises(UnpricedModel) as info:
            catalog.resolve(name)
        assert info.value.code == "model_not_priced" and "GET /v1/models" in info.value.message
    assert "neither a price nor a cost_ref" in catalog.unpriced["alpha"].reason
    assert "no-such-model" in catalog.unpriced["beta"].reason
    assert [m.id for m in catalog.list()] == ["embed"]


def test_alias_collision_is_refused() -> None:
    models = {"a": _model("a", ("x",)), "b": _model("b", ("x",))}
    with pytest.raises(CatalogError, match="'x' names both"):
        Catalog(models=models, providers={})
    with pytest.raises(CatalogError, match="'a' names both"):
        Catalog(
            models={"a": _model("a")}, providers={}, unpriced={"z": UnpricedEntry("z", "", ("a",))}
        )


def test_list_filters_by_type() -> None:
    catalog = Catalog(
        models={
            "c": _model("c"),
            "e": _model("e", type="embedding"),
            "i": _model("i", type="image"),
        },
        providers={},
    )
    assert [m.id for m in catalog.list(None)] == ["c", "e", "i"]
    assert [m.id for m in catalog.list("all")] == ["c", "e", "i"]
    assert [m.id for m in catalog.list("embedding")] == ["e"]
    assert [m.id for m in catalog.list(" Image , chat ")] == ["c", "i"]
    assert catalog.list("video") == []


@pytest.mark.parametrize("bad", ["foo", "chat,foo", "images"])
def test_unknown_type_lists_the_valid_ones(bad: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_type_filter(bad)
    assert "all, chat, embedding, image, video, audio, speech" in info.value.message
    assert info.value.param == "type"


def test_empty_filter_means_all() -> None:
    assert parse_type_filter("") is None
    assert parse_type_filter("all,chat") is None
