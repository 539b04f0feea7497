"""The real Claude Code CLI against a live farebox: `claude -p` completes, a tool-use round trip
completes, and the account is charged exactly what its history says.

Models (tests/support.py): `claude-sonnet-5-5` is an alias of claude-test (the simulator's native
Messages API); Claude Code's default `claude-opus-5-5` is claude-agent, whose simulator answers a
first turn with a tool_use; `test-model` is an OpenAI-compatible model.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import select

from farebox.db.schema import queries

from support import NANOS, Gateway

TIMEOUT_S = 120


def run_claude(
    claude_bin: Path, gw: Gateway, key: str, tmp: Path, *args: str, bearer: bool = False
) -> dict[str, Any]:
    home, work = tmp / "home", tmp / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gw.url,
        ("ANTHROPIC_AUTH_TOKEN" if bearer else "ANTHROPIC_API_KEY"): key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    done = subprocess.run(
        [str(claude_bin), "-p", *args, "--output-format", "json"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"rc={done.returncode}\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["is_error"] is False, result
    return result


def history(gw: Gateway, credit_id: str) -> list[Any]:
    gw.loop.run(gw.services.ledger.flush())
    account_id = gw.account_id(credit_id)
    return list(
        gw.services.db.read_sync(
            lambda conn: conn.execute(
                select(queries).where(queries.c.account_id == account_id)
            ).fetchall()
        )
    )


def assert_charged_as_history_says(gw: Gateway, credit_id: str, requests: int) -> int:
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    spent = NANOS - balance
    rows = history(gw, credit_id)
    assert len(rows) == requests
    assert all(row.price > 0 and row.input_count > 1000 for row in rows)  # Claude Code's prompt
    assert sum(row.price for row in rows) == spent
    report = gw.check()
    assert report.ok, report.problems
    return spent


def test_claude_p_completes_on_a_native_anthropic_model(
    claude_bin: Path, gateway: Gateway, tmp_path: Path
) -> None:
    credit_id, key = gateway.create_account(1)
    result = run_claude(claude_bin, gateway, key, tmp_path, "say pong", "--model", "sonnet")
    assert "say pong" in result["result"]  # the simulator repeats the prompt
    assert result["num_turns"] == 1
    assert assert_charged_as_history_says(gateway, credit_id, requests=1) > 0
    (row,) = history(gateway, credit_id)
    assert row.model == "claude-test"


def test_claude_p_completes_on_an_openai_compatible_model_with_bearer_auth(
    claude_bin: Path, gateway: Gateway, tmp_path: Path
) -> None:
    credit_id, key = gateway.create_account(1)
    result = run_claude(
        claude_bin, gateway, key, tmp_path, "say pong", "--model", "test-model", bearer=True
    )
    assert result["result"]
    assert assert_charged_as_history_says(gateway, credit_id, requests=1) > 0
    (row,) = history(gateway, credit_id)
    assert row.model == "test-model"


def test_tool_use_round_trip_runs_the_tool_and_bills_both_turns(
    claude_bin: Path, gateway: Gateway, tmp_path: Path
) -> None:
    credit_id, key = gateway.create_account(1)
    result = run_claude(
        claude_bin,
        gateway,
        key,
        tmp_path,
        "Use Bash to run `touch made-by-claude.txt && echo farebox-tool-ok`",
        "--allowedTools",
        "Bash",
    )
    assert (tmp_path / "work" / "made-by-claude.txt").exists()  # Claude Code ran the tool
    assert result["num_turns"] == 2
    assert "farebox-tool-ok" in result["result"]  # the second turn answered the tool result
    assert not result.get("permission_denials")
    assert assert_charged_as_history_says(gateway, credit_id, requests=2) > 0
    assert {row.model for row in history(gateway, credit_id)} == {"claude-agent"}
