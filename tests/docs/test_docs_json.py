"""The JSON in the docs parses, and every catalog example loads over the shipped catalog as an
operator's file would (a field renamed in the loader cannot leave a stale example behind)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farebox.catalog.loader import load_catalog
from farebox.data.loader import load_data_catalog

from doc_blocks import Block, all_blocks

JSON_BLOCKS = [block for block in all_blocks() if block.lang == "json"]
MODEL_CATALOG_KEYS = {"version", "defaults", "providers", "models", "remove", "replace_defaults"}
DATA_CATALOG_KEYS = {"defaults", "upstreams", "endpoints", "remove", "replace_defaults"}


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=[block.name for block in JSON_BLOCKS])
def test_the_json_block_parses_and_catalogs_load(block: Block, tmp_path: Path) -> None:
    value = json.loads(block.code)
    if not isinstance(value, dict):
        return
    path = tmp_path / "catalog.json"
    path.write_text(block.code)
    if {"upstreams", "endpoints"} & value.keys() and value.keys() <= DATA_CATALOG_KEYS:
        load_data_catalog(path, env={})
    elif {"models", "providers"} & value.keys() and value.keys() <= MODEL_CATALOG_KEYS:
        load_catalog(path, env={})


def test_the_docs_hold_catalog_examples() -> None:
    assert len(JSON_BLOCKS) >= 6
