"""Loading files: the operator's override merged over the shipped catalog, and bad files refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from farebox.catalog import (
    CATALOG_ENV,
    CatalogError,
    Route,
    TokenPrices,
    catalog_from_dict,
    load_catalog,
)

WriteJson = Callable[[str, object], Path]


@pytest.fixture
def base(write_json: WriteJson, doc: dict[str, Any]) -> Path:
    return write_json("base.json", doc)


def _load(base: Path, write_json: WriteJson, override: object, at: datetime, **env: str) -> Any:
    path = write_json("override.json", override)
    return load_catalog(path, env=env, base=base, at=at)


def test_base_alone(base: Path, at: datetime) -> None:
    catalog = load_catalog(env={"UP_KEY": "k"}, base=base, at=at)
    assert list(catalog.models) == ["alpha", "beta", "embed"]
    alpha = catalog.models["alpha"]
    assert alpha.routes == (Route("up", "alpha-upstream"), Route("alt", "alpha"))
    assert alpha.name == "Alpha" and alpha.tokenizer == "o200k_base"
    assert (
        catalog.models["beta"].name == "beta" and catalog.models["beta"].tokenizer == "o200k_base"
    )
    up, alt = catalog.providers["up"], catalog.providers["alt"]
    assert up.api_key == "k" and up.api_key_env == "UP_KEY"
    assert alt.api_key is None and alt.base_url == "http://127.0.0.1:9001/v1"
    assert (up.connect_timeout_s, up.first_byte_timeout_s, up.idle_timeout_s) == (5.0, 120.0, 60.0)


def test_price_only_change_keeps_the_rest(base: Path, write_json: WriteJson, at: datetime) -> None:
    override = {"models": {"alpha": {"price": {"input_per_1m": "3", "output_per_1m": "4"}}}}
    catalog = _load(base, write_json, override, at)
    alpha = catalog.models["alpha"]
    assert alpha.price == TokenPrices(3_000_000_000, 4_000_000_000)
    assert alpha.name == "Alpha" and alpha.aliases == ("acme/alpha",) and len(alpha.routes) == 2
    assert list(catalog.models) == ["alpha", "beta", "embed"]


def test_route_change(base: Path, write_json: WriteJson, at: datetime) -> None:
    override = {"models": {"beta": {"routes": [{"provider": "alt", "model": "gpt-5"}]}}}
    beta = _load(base, write_json, override, at).models["beta"]
    assert beta.routes == (Route("alt", "gpt-5"),)
    assert beta.cost is not None and beta.cost.input == 1_250_000_000


def test_null_removes_a_field(base: Path, write_json: WriteJson, at: datetime) -> None:
    catalog = _load(base, write_json, {"models": {"beta": {"cost_ref": None}}}, at)
    assert "beta" in catalog.unpriced and "beta" not in catalog.models


def test_margin_from_the_override_defaults(base: Path, write_json: WriteJson, at: datetime) -> None:
    catalog = _load(base, write_json, {"defaults": {"margin": "1"}}, at)
    assert catalog.models["beta"].price.input == 2_500_000_000


def test_null_default_margin_means_none(base: Path, write_json: WriteJson, at: datetime) -> None:
    catalog = _load(base, write_json, {"defaults": {"margin": None}}, at)
    assert catalog.models["beta"].price.input == 1_250_000_000  # sold at cost


def test_remove(base: Path, write_json: WriteJson, at: datetime) -> None:
    catalog = _load(base, write_json, {"remove": ["beta", "not-there"]}, at)
    assert list(catalog.models) == ["alpha", "embed"]


def test_remove_then_redefine_replaces_whole(
    base: Path, write_json: WriteJson, doc: dict[str, Any], at: datetime
) -> None:
    fresh = dict(doc["models"]["embed"], routes=[{"provider": "alt"}])
    catalog = _load(base, write_json, {"remove": ["alpha"], "models": {"alpha": fresh}}, at)
    alpha = catalog.models["alpha"]
    assert (
        alpha.type == "embedding"
        and alpha.aliases == ()
        and alpha.routes == (Route("alt", "alpha"),)
    )


def test_replace_defaults_drops_shipped_models(
    base: Path, write_json: WriteJson, doc: dict[str, Any], at: datetime
) -> None:
    demo = dict(doc["models"]["alpha"], aliases=[])
    catalog = _load(base, write_json, {"replace_defaults": True, "models": {"demo": demo}}, at)
    assert list(catalog.models) == ["demo"]
    assert set(catalog.providers) == {"up", "alt"}


def test_new_provider_and_provider_field_merge(
    base: Path, write_json: WriteJson, doc: dict[str, Any], at: datetime
) -> None:
    override = {
        "providers": {
            "local": {
                "kind": "openai",
                "base_url": "http://localhost:11434/v1",
                "idle_timeout_s": 5,
            },
            "up": {"base_url": "https://proxy.example/v1"},
        },
        "models": {
            "gamma": dict(doc["models"]["alpha"], aliases=[], routes=[{"provider": "local"}])
        },
    }
    catalog = _load(base, write_json, override, at, UP_KEY="k")
    assert catalog.providers["local"].idle_timeout_s == 5.0
    assert catalog.providers["local"].api_key is None
    assert catalog.providers["up"].base_url == "https://proxy.example/v1"
    assert catalog.providers["up"].api_key == "k"  # api_key_env kept from the base
    assert catalog.models["gamma"].routes == (Route("local", "gamma"),)


def test_override_path_from_env(base: Path, write_json: WriteJson, at: datetime) -> None:
    path = write_json("op.json", {"remove": ["alpha"]})
    catalog = load_catalog(env={CATALOG_ENV: str(path)}, base=base, at=at)
    assert "alpha" not in catalog.models


def test_unit_prices_are_loaded(doc: dict[str, Any], at: datetime) -> None:
    doc["models"]["alpha"]["unit_prices"] = {"image_1024_high": "0.17", "per_call": 0.005}
    alpha = catalog_from_dict(doc, {}, at=at).models["alpha"]
    assert dict(alpha.unit_prices) == {"image_1024_high": 170_000_000, "per_call": 5_000_000}
    assert dict(catalog_from_dict(doc, {}, at=at).models["beta"].unit_prices) == {}


def test_output_visibility_and_the_cap_field_default_to_the_safe_choices(
    doc: dict[str, Any], at: datetime
) -> None:
    catalog = catalog_from_dict(doc, {}, at=at)
    assert catalog.models["alpha"].all_output_visible is False  # unmarked: may hide output
    assert catalog.providers["up"].max_tokens_field == "max_tokens"
    doc["models"]["alpha"]["all_output_visible"] = True
    doc["providers"]["up"]["max_tokens_field"] = "max_completion_tokens"
    catalog = catalog_from_dict(doc, {}, at=at)
    assert catalog.models["alpha"].all_output_visible is True
    assert catalog.providers["up"].max_tokens_field == "max_completion_tokens"


def test_comment_keys_are_ignored(doc: dict[str, Any], at: datetime) -> None:
    doc["_comment"] = "hello"
    doc["models"]["alpha"]["_note"] = "x"
    doc["providers"]["up"]["_note"] = "y"
    assert "alpha" in catalog_from_dict(doc, {}, at=at).models


# --- bad files: each error names the file, the entry and the field -------------------------


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


class _Delete:
    """The field is removed (a stable repr keeps test ids the same in every xdist worker)."""

    def __repr__(self) -> str:
        return "<deleted>"


_DELETE = _Delete()

BAD = [
    ("models.alpha.routes", _DELETE, ["model 'alpha'", "field 'routes'", "is required"]),
    ("models.alpha.type", _DELETE, ["model 'alpha'", "field 'type'", "is required"]),
    ("models.alpha.price.input_per_1m", "-1", ["field 'price.input_per_1m'", "negative"]),
    ("models.alpha.price.input_per_1m", "abc", ["field 'price.input_per_1m'", "'abc'"]),
    ("models.alpha.price.output_per_1m", True, ["field 'price.output_per_1m'", "boolean"]),
    ("models.alpha.price.output_per_1m", _DELETE, ["field 'price.output_per_1m'", "required"]),
    ("models.alpha.price.cache_read_per_1m", "NaN", ["field 'price.cache_read_per_1m'"]),
    ("models.alpha.cost", {"input_per_1m": "-2", "output_per_1m": "1"}, ["'cost.input_per_1m'"]),
    ("models.alpha.routes", [{"provider": "nope"}], ["'routes[0].provider'", "'nope'", "alt, up"]),
    ("models.alpha.routes", [], ["field 'routes'", "non-empty"]),
    ("models.alpha.margn", "0.1", ["field 'margn'", "unknown field"]),
    ("models.alpha.margin", "-0.1", ["field 'margin'", "explicit price"]),
    ("models.alpha.margin", "lots", ["field 'margin'", "'lots'"]),
    ("defaults.margin", "x", ["field 'defaults.margin'"]),
    ("models.alpha.context", "128k", ["field 'context'", "whole number"]),
    ("models.alpha.max_output", 999999, ["field 'max_output'", "larger than the context"]),
    ("models.alpha.type", "hologram", ["field 'type'", "'hologram'"]),
    ("models.alpha.date_added", "yesterday", ["field 'date_added'", "ISO date"]),
    ("models.alpha.tokenizer", "o300k", ["field 'tokenizer'", "o200k_base"]),
    ("models.alpha.tokenizer", "gpt2", ["field 'tokenizer'", "'gpt2'", "o200k_base"]),
    ("models.alpha.aliases", ["a", "a"], ["field 'aliases'", "duplicates"]),
    ("models.alpha.aliases", ["beta"], ["'beta' names both model"]),
    ("models.alpha.cost_ref", {"provider": "openai"}, ["field 'cost_ref.model'", "required"]),
    ("models.alpha", "nope", ["field 'models.alpha'", "JSON object"]),
    ("providers.up.kind", "opneai", ["provider 'up'", "field 'kind'", "'opneai'"]),
    ("providers.up.base_url", "api.example.com", ["provider 'up'", "field 'base_url'"]),
    ("providers.up.idle_timeout_s", 0, ["provider 'up'", "field 'idle_timeout_s'"]),
    ("providers.up.base_url", _DELETE, ["provider 'up'", "field 'base_url'", "required"]),
    (
        "providers.up.max_tokens_field",
        "max_output_tokens",
        ["field 'max_tokens_field'", "'max_output_tokens'"],
    ),
    ("models.alpha.all_output_visible", "yes", ["field 'all_output_visible'", "true or false"]),
    ("version", 2, ["field 'version'"]),
    ("remove", ["alpha"], ["field 'remove'", "unknown field"]),  # only valid in an override
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_file_is_refused_with_a_clear_message(
    write_json: WriteJson,
    doc: dict[str, Any],
    at: datetime,
    path: str,
    value: Any,
    expected: list[str],
) -> None:
    _set(doc, path, value)
    file = write_json("bad.json", doc)
    with pytest.raises(CatalogError) as info:
        load_catalog(env={}, base=file, at=at)
    message = str(info.value)
    assert str(file) in message
    for part in expected:
        assert part in message, message


def test_unpriced_models_are_still_validated(
    write_json: WriteJson, doc: dict[str, Any], at: datetime
) -> None:
    del doc["models"]["alpha"]["price"]
    doc["models"]["alpha"]["date_added"] = "soon"
    with pytest.raises(CatalogError, match="field 'date_added'"):
        load_catalog(env={}, base=write_json("bad.json", doc), at=at)


def test_bad_json(base: Path, write_json: WriteJson, at: datetime) -> None:
    path = write_json("override.json", '{"models": {"alpha": {"price": }}}')
    with pytest.raises(CatalogError, match=r"override\.json: not valid JSON"):
        load_catalog(path, env={}, base=base, at=at)


def test_missing_file(base: Path, tmp_path: Path, at: datetime) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(CatalogError, match=r"nope\.json: cannot read"):
        load_catalog(env={CATALOG_ENV: str(missing)}, base=base, at=at)


def test_override_errors_name_the_override_file(
    base: Path, write_json: WriteJson, at: datetime
) -> None:
    override = {"models": {"alpha": {"price": {"input_per_1m": "-5", "output_per_1m": "1"}}}}
    with pytest.raises(CatalogError) as info:
        _load(base, write_json, override, at)
    assert "override.json (merged over" in str(info.value)
    assert "model 'alpha'" in str(info.value)


def test_bad_override_top_level(base: Path, write_json: WriteJson, at: datetime) -> None:
    with pytest.raises(CatalogError, match="field 'replace_defaults'"):
        _load(base, write_json, {"replace_defaults": "yes"}, at)
    with pytest.raises(CatalogError, match="must be a JSON object"):
        _load(base, write_json, [1, 2], at)
