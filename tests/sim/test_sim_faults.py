"""Parsing fault options from URL prefixes and body fields."""

import pytest

from farebox.sim.faults import (
    HANG_FOREVER_MS,
    NO_FAULTS,
    Faults,
    FaultSpecError,
    parse_body,
    parse_prefix,
)


def test_prefix_parses_every_kind_of_value() -> None:
    faults = parse_prefix("status=503,hang_ms=20,tool_call,usage=false,tps=12.5,fail_first=2")
    assert faults == Faults(
        status=503, hang_ms=20.0, tool_call=True, usage=False, tps=12.5, fail_first=2
    )


def test_bare_timeout_hangs_for_an_hour() -> None:
    assert parse_prefix("timeout").hang_ms == HANG_FOREVER_MS


def test_empty_prefix_and_missing_body_mean_no_faults() -> None:
    assert parse_prefix("") is NO_FAULTS
    assert parse_body(None) is NO_FAULTS


def test_body_accepts_json_types() -> None:
    faults = parse_body({"status": 429, "output_tokens": 5, "tool_call": True, "ttft_ms": 1.5})
    assert faults == Faults(status=429, output_tokens=5, tool_call=True, ttft_ms=1.5)


def test_body_wins_over_prefix() -> None:
    merged = parse_prefix("status=503,latency_ms=10").merged(parse_body({"status": 500}))
    assert merged == Faults(status=500, latency_ms=10.0)


@pytest.mark.parametrize(
    "spec",
    ["nope=1", "status=abc", "status=42", "output_tokens=-1", "latency_ms=-5", "usage=maybe"],
)
def test_bad_prefix_is_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(FaultSpecError, match="sim option"):
        parse_prefix(spec)


def test_body_sim_must_be_an_object() -> None:
    with pytest.raises(FaultSpecError):
        parse_body([1, 2])
    with pytest.raises(FaultSpecError):
        parse_body({"output_tokens": True})
