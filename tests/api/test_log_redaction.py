"""No credit_id, API key or media signature reaches a log, even from PPQ's `?credit_id=` form and
with uvicorn's access log on (it writes each request's path with its query string)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from farebox.redaction import redact_query

from support import ADMIN_TOKEN, free_port


def test_redact_query_hides_sensitive_values_only() -> None:
    assert redact_query("/queries/history") == "/queries/history"
    assert redact_query("/x?page=2&model=gpt") == "/x?page=2&model=gpt"
    assert redact_query("/x?credit_id=abc&page=2") == "/x?credit_id=[redacted]&page=2"
    assert redact_query("/x?page=2&api_key=sk-1&sig=s&exp=9") == (
        "/x?page=2&api_key=[redacted]&sig=[redacted]&exp=9"
    )
    assert redact_query("/x?credit%5Fid=abc") == "/x?credit%5Fid=[redacted]"
    assert redact_query("/x?CREDIT_ID=abc&credit_id") == "/x?CREDIT_ID=[redacted]&credit_id"


@pytest.mark.slow  # runs `farebox serve` as a process
def test_server_log_never_shows_a_credit_id_key_or_signature(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env.update(
        FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'farebox.db'}",
        FAREBOX_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    uvicorn = [sys.executable, "-m", "uvicorn", "farebox.app:app_from_env", "--factory"]
    with log_path.open("wb") as out:
        # The documented way to run uvicorn yourself; its access log is on by default.
        proc = subprocess.Popen(
            [*uvicorn, "--host", "127.0.0.1", "--port", str(port), "--log-level", "debug"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(300):
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            made = c.post("/accounts/create").json()
            credit_id, key = made["credit_id"], made["api_key"]
            header = {"x-credit-id": credit_id}
            assert c.get(f"/queries/history?credit_id={credit_id}").status_code == 200
            assert c.get(f"/queries/history?page=1&credit%5Fid={credit_id}").status_code == 200
            assert c.get(f"/queries/history?credit_id={credit_id}&page=x").status_code == 400
            assert c.get(f"/queries/history?api_key={key}", headers=header).status_code == 200
            assert c.get("/queries/history", headers={"Authorization": f"Bearer {key}"}).is_success
            assert c.get("/keys?show_key=true", headers=header).status_code == 200
            assert c.post("/credits/balance", json={"credit_id": credit_id}).status_code == 200
            assert c.post("/credits/rotate", headers=header).status_code == 200
            signature = "S1gnatureThatMustNotBeLogged"
            assert c.get(f"/v1/media/gen_x/0?sig={signature}&exp=1").status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    log = log_path.read_text()
    for secret in (credit_id, key, key[len("sk-") :], signature):
        assert secret not in log
    assert "GET /queries/history?credit_id=[redacted]" in log  # the access log was on
    assert "credit%5Fid=[redacted]" in log
