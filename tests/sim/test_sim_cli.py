"""`farebox sim` on the command line: its help, and a real process serving requests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from farebox.sim.cli import sim_command
from farebox.sim.faults import FAULT_KEYS

SRC = Path(__file__).resolve().parents[2] / "src"


def test_help_lists_options_and_fault_keys() -> None:
    result = CliRunner().invoke(sim_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--latency-ms",
        "--ttft-ms",
        "--tokens-per-second",
        "--output-tokens",
        "--fault-rate",
        "--seed",
    ):
        assert option in result.output
    for key in FAULT_KEYS:
        assert key in result.output


def test_bad_fault_rate_is_refused() -> None:
    result = CliRunner().invoke(sim_command, ["--fault-rate", "2"])
    assert result.exit_code != 0
    assert "fault-rate" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # starts `farebox sim` as a process
def test_process_serves_until_terminated() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = "from farebox.sim.cli import sim_command; sim_command()"
    args = ["--port", str(port), "--output-tokens", "3", "--api-key", "sk-cli"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "one two"}]},
            headers={"Authorization": "Bearer sk-cli"},
        )
        assert reply.json()["choices"][0]["message"]["content"] == "one two one"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert f"127.0.0.1:{port}" in stderr
