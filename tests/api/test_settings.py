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


def test_a_bad_boolean_names_the_variable() -> None:
    with pytest.raises(ValueError, match="FAREBOX_LEDGER_ASYNC_COMMIT must be"):
        Settings.from_env({"FAREBOX_LEDGER_ASYNC_COMMIT": "maybe"})


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FAREBOX_HOLD_TIMEOUT_S", "five", "must be a number"),
        ("FAREBOX_DB_THREADS", "2.5", "must be a whole number"),
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
