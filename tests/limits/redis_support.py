"""The real Redis on 127.0.0.1:6379 (FAREBOX_TEST_REDIS), shared with other test runs: every
test names its own prefix, so parallel tests never see each other's keys or channels."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

REDIS_URL = os.environ.get("FAREBOX_TEST_REDIS", "redis://127.0.0.1:6379/0")


def redis_available(url: str = REDIS_URL) -> bool:
    host_port = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    """Skip without Redis (fail instead under CI=true: the machine starts one)."""
    if not redis_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable; CI requires it")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")


def test_prefix() -> str:
    return f"farebox-test:{uuid.uuid4().hex[:12]}:"


test_prefix.__test__ = False  # type: ignore[attr-defined]
