"""Shared fixtures for the catalog tests: a fixed clock and small catalog documents."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

MINIMAL: dict[str, Any] = {
    "version": 1,
    "defaults": {"margin": "0.20"},
    "providers": {
        "up": {"kind": "openai", "base_url": "http://127.0.0.1:9000/v1", "api_key_env": "UP_KEY"},
        "alt": {"kind": "openai", "base_url": "http://127.0.0.1:9001/v1/"},
    },
    "models": {
        "alpha": {
            "name": "Alpha",
            "provider": "Acme",
            "type": "chat",
            "context": 128000,
            "max_output": 16384,
            "date_added": "2025-01-02",
            "tokenizer": "o200k_base",
            "price": {"input_per_1m": "1.50", "output_per_1m": "12.00"},
            "routes": [{"provider": "up", "model": "alpha-upstream"}, {"provider": "alt"}],
            "aliases": ["acme/alpha"],
        },
        "beta": {
            "provider": "OpenAI",
            "type": "chat",
            "context": 400000,
            "max_output": 128000,
            "date_added": "2025-08-07",
            "cost_ref": {"provider": "openai", "model": "gpt-5"},
            "routes": [{"provider": "up"}],
        },
        "embed": {
            "provider": "OpenAI",
            "type": "embedding",
            "context": 8191,
            "max_output": 0,
            "date_added": "2024-01-25",
            "tokenizer": "cl100k_base",
            "cost_ref": {"provider": "openai", "model": "text-embedding-3-small"},
            "routes": [{"provider": "up", "model": "text-embedding-3-small"}],
        },
    },
}


@pytest.fixture(scope="session")
def at() -> datetime:
    """The instant genai-prices rates are read at, fixed so tests do not depend on the clock."""
    return AT


@pytest.fixture
def doc() -> dict[str, Any]:
    """A fresh, mutable copy of the minimal catalog document."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def write_json(tmp_path: Path) -> Callable[[str, object], Path]:
    """Write a JSON document (or raw text) to a file in tmp_path and return its path."""

    def write(name: str, data: object) -> Path:
        path = tmp_path / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(orjson.dumps(data))
        return path

    return write
