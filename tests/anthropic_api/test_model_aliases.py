"""Claude Code's model ids in the shipped catalog, dated ids, and an operator pointing them at
another model."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from farebox.catalog.errors import CatalogError
from farebox.catalog.loader import load_catalog
from farebox.errors import UnknownModel


def test_claude_code_ids_reach_claude_natively_with_openrouter_as_fallback() -> None:
    catalog = load_catalog(env={})
    assert catalog.providers["anthropic"].kind == "anthropic"
    for alias, model_id in [
        ("claude-opus-5-5", "claude-opus-5.5"),
        ("claude-sonnet-5-5", "claude-sonnet-5.5"),
        ("claude-haiku-5-5", "claude-haiku-5.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
    ]:
        model = catalog.resolve(alias)
        assert model.id == model_id
        assert [r.provider for r in model.routes] == ["anthropic", "openrouter"]
        assert model.price.cache_read is not None and model.price.cache_write is not None


def test_a_dated_id_falls_back_to_its_undated_name() -> None:
    catalog = load_catalog(env={})
    assert catalog.resolve("claude-opus-5-5-20261101").id == "claude-opus-5.5"
    assert catalog.resolve("claude-opus-5-5-2026-11-01").id == "claude-opus-5.5"
    with pytest.raises(UnknownModel):
        catalog.resolve("no-such-model-20261101")


def test_operator_points_claude_code_at_an_open_weight_model(tmp_path: Path) -> None:
    override = tmp_path / "catalog.json"
    override.write_bytes(
        orjson.dumps(
            {
                "models": {
                    "claude-opus-5.5": {"aliases": ["anthropic/claude-opus-5.5"]},
                    "qwen3-coder": {"aliases": ["qwen/qwen3-coder", "claude-opus-5-5"]},
                }
            }
        )
    )
    catalog = load_catalog(override, env={})
    assert catalog.resolve("claude-opus-5-5").id == "qwen3-coder"
    assert catalog.resolve("claude-opus-5-5-20261101").id == "qwen3-coder"
    assert catalog.resolve("claude-opus-5.5").id == "claude-opus-5.5"


def test_an_alias_on_two_models_is_a_clear_catalog_error(tmp_path: Path) -> None:
    override = tmp_path / "catalog.json"
    override.write_bytes(
        orjson.dumps({"models": {"qwen3-coder": {"aliases": ["claude-opus-5-5"]}}})
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(override, env={})
    assert "'claude-opus-5-5' names both model" in str(info.value)
