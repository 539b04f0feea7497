"""Settings read from the environment: defaults, values, and a clear error for a bad value."""

from __future__ import annotations

import pytest

from farebox.settings import Settings


def test_ledger_async_commit_defaults_on_and_can_be_turned_off() -> None:
    assert Settings.from_env({}).ledger_async_commit is True
    for off in ("0", "false", "No", "off"):
        assert Settings.from_env({"FAREBOX_LEDGER_ASYNC_COMMIT": off}).ledger_async_commit is False
    for on in ("1", "true", "YES", "on", ""):
        assert Settings.from_env({"FAREBOX_LEDGER_ASYNC_COMMIT": on}).ledger_async_commit is True


def test_default_max_tokens_is_4096_unless_set() -> None:
    assert Settings.from_env({}).default_max_tokens == 4096
    assert Settings.from_env({"FAREBOX_DEFAULT_MAX_TOKENS": "16384"}).default_max_tokens == 16384


def test_a_bad_boolean_names_the_variable() -> None:
    with pytest.raises(ValueError, match="FAREBOX_LEDGER_ASYNC_COMMIT must be"):
        Settings.from_env({"FAREBOX_LEDGER_ASYNC_COMMIT": "maybe"})


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FAREBOX_HOLD_TIMEOUT_S", "five", "must be a number"),
        ("FAREBOX_DB_THREADS", "2.5", "must be a whole number"),
        ("FAREBOX_DEFAULT_MAX_TOKENS", "0", "must be a whole number of at least 1"),
        ("FAREBOX_DEFAULT_MAX_TOKENS", "lots", "must be a whole number of at least 1"),
    ],
)
def test_a_bad_number_names_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ValueError, match=f"{name} {says}, not '{value}'"):
        Settings.from_env({name: value})


def test_the_cli_stops_on_a_bad_setting_with_a_message() -> None:
    from click.testing import CliRunner

    from farebox.cli import main

    result = CliRunner().invoke(main, ["ledger", "check"], env={"FAREBOX_HOLD_TIMEOUT_S": "x"})
    assert result.exit_code == 1
    assert "configuration: FAREBOX_HOLD_TIMEOUT_S must be a number, not 'x'" in result.output


def test_serve_help_documents_the_default_max_tokens() -> None:
    from click.testing import CliRunner

    from farebox.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--default-max-tokens" in result.output
    assert "FAREBOX_DEFAULT_MAX_TOKENS" in result.output
