"""The real Redis on 127.0.0.1:6379 (FAREBOX_TEST_REDIS), shared with other test runs: every
test names its own prefix, so parallel tests never see each other's keys or channels."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
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


class RedisProcess:
    """A redis-server of the test's own (Debian's, as on every machine of this kind), on a free
    port: tests may stop and restart it, which they must never do to the shared one."""

    def __init__(self, port: int, workdir: str) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is not installed; CI requires it")
            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_available(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
