"""Settings read from the environment: defaults, values, and a clear error for a bad value."""

from __future__ import annotations

import pytest

from farebox.net.connections import connection_cap
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


def test_slow_client_and_proxy_settings() -> None:
    default = Settings.from_env({})
    assert (default.header_timeout_s, default.body_timeout_s, default.body_min_rate) == (
        10,
        20,
        500,
    )
    assert (default.max_connections, default.trusted_proxies) == (1000, ())
    assert (default.signup_per_minute, default.signup_burst) == (3, 10)
    custom = Settings.from_env(
        {
            "FAREBOX_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.5 ,2001:db8::1",
            "FAREBOX_SIGNUP_BURST": "2",
        }
    )
    assert custom.trusted_proxies == ("10.0.0.0/8", "192.168.1.5/32", "2001:db8::1/128")
    assert custom.signup_burst == 2
    with pytest.raises(ValueError, match="FAREBOX_TRUSTED_PROXIES must be comma-separated IP"):
        Settings.from_env({"FAREBOX_TRUSTED_PROXIES": "10.0.0.0/8, lb.internal"})


def test_the_connection_cap_leaves_room_under_the_open_file_limit() -> None:
    assert connection_cap(1000, 20000) == 1000
    assert connection_cap(1000, 1024) == 768
    assert connection_cap(1000, 256) == 192
    assert connection_cap(1000, 10) == 1
