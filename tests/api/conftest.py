"""Fixtures for the API tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support import Gateway


@pytest.fixture(scope="module")
def c(gateway: Gateway) -> Iterator[httpx.Client]:
    """One client per module: making an httpx.Client costs ~0.1 s (it loads CA certificates)."""
    with gateway.client() as client:
        yield client
