"""`farebox serve --demo` serves the private models through the simulated enclave, writes its
policy, and prints the private-proxy command, which works as printed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from openai import OpenAI

from farebox.private.attestation import verify_bundle
from farebox.private.policy import Policy

from support import free_port


def _start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "farebox", *args],
            cwd=cwd,
            env={**os.environ, "FAREBOX_DATABASE_URL": f"sqlite:///{cwd / 'demo.db'}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait_for(log: Path, proc: subprocess.Popen[bytes], text: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        if text in output:
            return output
        assert proc.poll() is None, output
        time.sleep(0.1)
    raise AssertionError(log.read_text(errors="replace"))


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"{url}: the process exited"
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_demo_prints_a_private_proxy_command_that_works(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    demo = _start(["serve", "--demo", "--port", str(port)], tmp_path, tmp_path / "demo.log")
    processes.append(demo)
    banner = _wait_for(tmp_path / "demo.log", demo, "Demos only.")
    _wait_http(f"http://127.0.0.1:{port}/healthz", demo)
    (line,) = [ln.strip() for ln in banner.splitlines() if "farebox private-proxy" in ln]
    assert "trusts a SIMULATED enclave" in banner
    policy = orjson.loads((tmp_path / "demo-enclave-policy.json").read_bytes())
    assert policy["simulator"] is True and len(policy["measurements"]) == 1
    args = shlex.split(line)
    assert args[:2] == ["farebox", "private-proxy"]
    assert args[args.index("--gateway") + 1] == f"http://127.0.0.1:{port}"
    proxy_port = free_port()
    proxy = _start([*args[1:], "--port", str(proxy_port)], tmp_path, tmp_path / "proxy.log")
    processes.append(proxy)
    base = f"http://127.0.0.1:{proxy_port}"
    _wait_http(base + "/health", proxy)
    started = (tmp_path / "proxy.log").read_text()
    assert "WARNING: this policy trusts a simulated enclave" in started
    health = httpx.get(base + "/health").json()
    assert health["attested"] is True and health["simulator_policy"] is True
    listed = {m["id"] for m in httpx.get(base + "/v1/models").json()["data"]}
    assert "private/kimi-k2-5" in listed
    client = OpenAI(base_url=base + "/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="private/kimi-k2-5", messages=[{"role": "user", "content": "Hello enclave"}]
    )
    assert reply.choices[0].message.content.startswith("Hello enclave")
    assert reply.model == "kimi-k2-5" and reply.usage is not None
    assert reply.usage.model_extra["cost"] > 0


def test_farebox_sim_runs_an_enclave_whose_written_policy_verifies_it(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port, enclave_port = free_port(), free_port()
    policy_path = tmp_path / "enclave-policy.json"
    args = ["sim", "--port", str(port), "--enclave-port", str(enclave_port)]
    sim = _start([*args, "--enclave-policy", str(policy_path)], tmp_path, tmp_path / "sim.log")
    processes.append(sim)
    enclave = f"http://127.0.0.1:{enclave_port}"
    _wait_http(enclave + "/health", sim)
    bundle = httpx.get(enclave + "/attestation").content
    keys = httpx.get(enclave + "/.well-known/hpke-keys").content
    verified = verify_bundle(bundle, keys, Policy.load(policy_path))
    assert verified.key_config.encode() == keys
