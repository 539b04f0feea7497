"""The gateway never has the plaintext: a canary sent in prompts (and echoed in completions) is
nowhere in anything the gateway process wrote, checked byte for byte after the run.

The gateway runs as its own `farebox serve` process (debug logging, its working folder, its
TMPDIR and its SQLite file all inside one folder) so everything it wrote can be read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from openai import OpenAI

from farebox.private.policy import Policy
from farebox.sim.enclave import RunningEnclave

from private_support import ENCLAVE_MODEL, PRIVATE_MODEL, chat_body, running_proxy, sealed_chat
from support import ADMIN_TOKEN, free_port, wait_until

TEST_PRICE = {"input_per_1m": "1", "output_per_1m": "2"}


def _catalog(path: Path, enclave_url: str) -> Path:
    base = {"provider": "T", "type": "chat", "context": 100_000, "max_output": 4096,
            "date_added": "2026-01-01", "price": TEST_PRICE}  # fmt: skip
    path.write_text(
        json.dumps(
            {
                "replace_defaults": True,
                "providers": {"enclave": {"kind": "ehbp", "base_url": enclave_url}},
                "models": {
                    PRIVATE_MODEL: {
                        **base,
                        "routes": [{"provider": "enclave", "model": ENCLAVE_MODEL}],
                    }
                },
            }
        )
    )
    return path


def _serve(workdir: Path, log: Path, catalog: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (workdir / "tmp").mkdir()
    env = {
        **os.environ,
        "FAREBOX_DATABASE_URL": f"sqlite:///{workdir / 'farebox.db'}",
        "FAREBOX_CATALOG": str(catalog),
        "FAREBOX_ADMIN_TOKEN": ADMIN_TOKEN,
        "TMPDIR": str(workdir / "tmp"),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "farebox", "serve", "--port", str(port), "--log-level", "debug"],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(log.read_text())


def _written(workdir: Path, log: Path) -> dict[Path, bytes]:
    files = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    files[log] = log.read_bytes()
    return files


def test_a_canary_in_prompts_and_answers_never_reaches_anything_the_gateway_writes(
    tmp_path: Path, enclave: RunningEnclave, policy: Policy
) -> None:
    canary = "canary-" + uuid.uuid4().hex
    workdir, log = tmp_path / "gateway", tmp_path / "gateway.log"
    workdir.mkdir()
    proc, url = _serve(workdir, log, _catalog(tmp_path / "catalog.json", enclave.url))
    try:
        r = httpx.post(url + "/accounts/create")
        credit_id, api_key = r.json()["credit_id"], r.json()["api_key"]
        granted = httpx.post(
            url + "/admin/credits",
            json={"credit_id": credit_id, "amount_usd": "1"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert granted.status_code == 200
        seen: list[str] = []
        with running_proxy(url, api_key, policy) as proxy:
            client = OpenAI(base_url=proxy.url + "/v1", api_key="unused")
            prompt = [{"role": "user", "content": f"remember {canary} please"}]
            long = {"sim": {"output_tokens": 200}}  # the whole prompt comes back
            reply = client.chat.completions.create(
                model=PRIVATE_MODEL, messages=prompt, extra_body=long
            )
            seen.append(reply.choices[0].message.content or "")
            for chunk in client.chat.completions.create(
                model=PRIVATE_MODEL, messages=prompt, stream=True, extra_body=long
            ):
                seen.extend(c.delta.content or "" for c in chunk.choices)
        # and without usage reports, a cut, a leaving client: the paths that estimate
        for sim, stop in (({"drop_trailer": True}, None), ({"disconnect_after": 3}, None),
                          ({"stall_after": 2}, 2)):  # fmt: skip
            sealed_chat(url, api_key, chat_body(f"again {canary}", stream=True, sim=sim),
                        stop_after_frames=stop)  # fmt: skip
        auth = {"Authorization": f"Bearer {api_key}"}
        assert wait_until(
            lambda: (
                httpx.get(url + "/queries/history", headers=auth).json()["pagination"]["total"] == 5
            )
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert canary in "".join(seen)  # it did go through, both ways
    written = _written(workdir, log)
    assert any(path.name == "farebox.db" for path in written)
    assert any(PRIVATE_MODEL.encode() in data for data in written.values())  # the scan reads
    leaks = [str(path) for path, data in written.items() if canary.encode() in data]
    assert leaks == []
    checked = subprocess.run(
        [sys.executable, "-m", "farebox", "ledger", "check"],
        env={**os.environ, "FAREBOX_DATABASE_URL": f"sqlite:///{workdir / 'farebox.db'}"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
