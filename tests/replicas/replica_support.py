"""Three `farebox serve` replicas on one PostgreSQL database behind a real haproxy, and lean
aiohttp clients that record what each request got (status, request id, tokens delivered).

haproxy is started from a generated config on free ports: round robin over the replicas, an HTTP
health check on /readyz every 200 ms (a replica slow to answer on a loaded machine is not taken
out: a 503 or a refused connection is what counts), and retries with redispatch on connection
failures (what a real load balancer does: a refused connection never reached a replica).
Requests that reached a replica are never retried: the tests count every non-2xx the client sees.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from e2e_support import LIVE, Proc, StreamResult, _spawn
from support import free_port, missing_tool

HEALTH_INTERVAL_MS = 200


def require_haproxy() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )
    if found is None:
        missing_tool("haproxy is not installed (apt-get install haproxy)")
    return found


@dataclass
class Replica:
    name: str
    port: int
    env: dict[str, str]
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        self.proc = _spawn(
            self.name, ["serve", "--host", "127.0.0.1", "--port", str(self.port)], self.env
        )
        self.proc.url = self.url

    def wait_ready(self, timeout: float = 90) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise AssertionError(f"{self.name} exited:\n{self.proc.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.proc.log()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()

    def terminate(self) -> int:
        """SIGTERM, and the exit status once drained."""
        assert self.proc is not None
        self.proc.popen.send_signal(signal.SIGTERM)
        return self.proc.popen.wait(120)


HAPROXY_CFG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout queue 30s
    timeout check 3s
    retries 3
    option redispatch 1
frontend gateway
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {inter}ms fall 2 rise 1 maxconn 64
{servers}
"""


def haproxy_config(port: int, replicas: list[Replica]) -> str:
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
    return HAPROXY_CFG.format(port=port, inter=HEALTH_INTERVAL_MS, servers=servers)


def start_haproxy(binary: str, replicas: list[Replica], folder: Path) -> Proc:
    port = free_port()
    cfg = folder / "haproxy.cfg"
    cfg.write_text(haproxy_config(port, replicas))
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    fd, log = tempfile.mkstemp(prefix="farebox-haproxy-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        popen = subprocess.Popen(
            [binary, "-db", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT
        )
    proc = Proc("haproxy", popen, Path(log), url=f"http://127.0.0.1:{port}")
    LIVE.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(proc.url + "/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"haproxy not serving:\n{proc.log()}")


# ---------------------------------------------------------------------------------------------
# Clients


@dataclass
class Outcome:
    """What one request got, as its client saw it."""

    status: int = 0
    request_id: str | None = None
    cost: str | None = None  # x-farebox-cost of a non-stream answer
    stream: StreamResult | None = None
    broken: str | None = None  # the connection failed or ended early


async def post_chat(
    session: aiohttp.ClientSession, url: str, key: str, body: Mapping[str, Any]
) -> Outcome:
    """POST /v1/chat/completions; a stream is read to its end, recording what was delivered."""
    out = Outcome()
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
            out.status = r.status
            out.request_id = r.headers.get("x-farebox-request-id")
            out.cost = r.headers.get("x-farebox-cost")
            if not body.get("stream") or r.status != 200:
                await r.read()
                return out
            res = out.stream = StreamResult(status=r.status)
            async for line in r.content:
                text = line.decode().strip()
                if text.startswith("data: "):
                    res.feed(text[6:])
    except (aiohttp.ClientError, ConnectionError) as exc:
        out.broken = repr(exc)
        if out.stream is not None:
            out.stream.broken = out.broken
    return out


def chat(model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "count the ledger entries now"}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def lean_session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=120),
        json_serialize=json.dumps,
    )
