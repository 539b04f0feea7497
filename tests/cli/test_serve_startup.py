"""`farebox serve` as a newcomer meets it: what it prints at start (never a secret), a busy port
found before anything is created, --demo refusing --workers and honouring --catalog, and
commands printed so that they run as shown."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from farebox.catalog.loader import load_catalog
from farebox.cli import main as cli
from farebox.demo import build_demo_catalog, demo_banner
from farebox.payments.config import PaymentsConfig
from farebox.settings import Settings
from farebox.sim.server import SimServer
from farebox.startup import farebox_command, startup_summary


def test_the_start_block_says_what_runs_and_never_a_secret() -> None:
    env = {
        "OPENAI_API_KEY": "sk-upstream-secret",
        "FAREBOX_LNBITS_URL": "http://127.0.0.1:5000",
        "FAREBOX_LNBITS_INVOICE_KEY": "lnbits-secret",
        "FAREBOX_REDIS_URL": "redis://:redis-secret@127.0.0.1:6379/0",
    }
    settings = Settings(
        database_url="postgresql://farebox:db-secret@db.internal:5432/farebox",
        admin_token="admin-secret",
        redis_url=env["FAREBOX_REDIS_URL"],
        host="0.0.0.0",
        port=8080,
        workers=4,
        extra_env=env,
    )
    catalog = load_catalog(None, env=env)
    text = startup_summary(settings, catalog, PaymentsConfig.from_env(env))
    assert text.startswith("farebox ") and "on http://0.0.0.0:8080, 4 workers" in text
    assert "postgresql://farebox:***@db.internal:5432/farebox" in text
    assert f"shipped: {len(catalog.models)} models" in text
    assert "keys set for openai" in text and "without a key: anthropic" in text
    assert "LNbits" in text and "admin API: on" in text
    assert "GET /metrics with the admin token; access lines as text on stdout" in text
    assert "FAREBOX_REDIS_URL is set: per-key rate limits are shared" in text
    for secret in (
        "sk-upstream-secret",
        "db-secret",
        "admin-secret",
        "lnbits-secret",
        "redis-secret",
    ):
        assert secret not in text
    assert len(text.splitlines()) <= 8  # one short block

    bare = startup_summary(Settings(), load_catalog(None, env={}), PaymentsConfig.from_env({}))
    assert "sqlite:///farebox.db" in bare and "admin API: off (set FAREBOX_ADMIN_TOKEN" in bare
    assert "payments:  none" in bare and "no provider key set" in bare and "note:" not in bare
    assert "GET /metrics off (no admin token)" in bare


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize("demo", [True, False])
def test_a_busy_port_is_refused_before_anything_is_created(
    busy_port: int, tmp_path: Path, demo: bool
) -> None:
    """A second `serve --demo` used to create and fund an account, then fail to bind."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        args = ["serve", "--port", str(busy_port), *(["--demo"] if demo else [])]
        result = CliRunner().invoke(cli, args, env={"FAREBOX_DATABASE_URL": ""})
    finally:
        os.chdir(old)
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{busy_port} is already in use" in result.output
    assert list(tmp_path.iterdir()) == []  # no database, no account


def test_demo_refuses_workers_clearly() -> None:
    result = CliRunner().invoke(cli, ["serve", "--demo", "--workers", "2"])
    assert result.exit_code == 2
    assert "--demo runs in one process" in result.output


def test_demo_serves_the_operator_catalog_on_the_simulator(sim: SimServer, tmp_path: Path) -> None:
    """--catalog (or FAREBOX_CATALOG) is merged over the shipped catalog, and every model of the
    result, the operator's own included, is answered by the simulator."""
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "providers": {"mine": {"kind": "openai", "base_url": "https://llm.example/v1"}},
                "models": {
                    "gpt-5-mini": {"price": {"input_per_1m": "7", "output_per_1m": "9"}},
                    "house-model": {
                        "provider": "Me",
                        "type": "chat",
                        "context": 8192,
                        "max_output": 1024,
                        "date_added": "2026-01-01",
                        "routes": [{"provider": "mine", "model": "llama"}],
                        "price": {"input_per_1m": "1", "output_per_1m": "1"},
                    },
                },
            }
        )
    )
    catalog = build_demo_catalog(sim.url, catalog_path=path)
    assert catalog.resolve("gpt-5-mini").price.input == 7_000_000_000
    house = catalog.resolve("house-model")
    assert [catalog.providers[r.provider].base_url for r in house.routes] == [sim.url + "/v1"]
    for model in catalog.models.values():
        for route in model.routes:
            provider = catalog.providers[route.provider]
            assert provider.kind == "local" or provider.base_url.startswith(sim.url), model.id
    banner = demo_banner(
        Settings(catalog_path=path, admin_token="demo-t"), sim.url, "cid", "sk-x", "acct_x", "fb"
    )
    assert f"shipped + {path}" in banner


def test_printed_commands_name_this_farebox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`farebox` is not on PATH after the quick start: the banner names the real executable."""
    script = tmp_path / "venv" / "bin" / "farebox"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "argv", [str(script), "serve", "--demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert farebox_command() == str(script)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin")
    assert farebox_command() == "farebox"  # the one on PATH is this one
    monkeypatch.setattr(sys, "argv", ["/somewhere/cli.py"])
    assert farebox_command() == f"{sys.executable} -m farebox"
    settings = Settings(admin_token="demo-tok", port=8001)
    banner = demo_banner(settings, "http://sim", "cid", "sk-x", "acct_x", str(script))
    assert f"FAREBOX_ADMIN_TOKEN=demo-tok {script} dev pay --url http://127.0.0.1:8001 <" in banner
    assert "-H 'Authorization: Bearer demo-tok'" in banner  # the admin API's first step works
    own = demo_banner(
        settings, "http://sim", "cid", "sk-x", "acct_x", "farebox", token_generated=False
    )
    assert "demo-tok" not in own and "$FAREBOX_ADMIN_TOKEN" in own
