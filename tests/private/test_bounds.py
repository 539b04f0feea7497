"""The hold for a request nobody can read, the enclave's usage report, and the estimate."""

from __future__ import annotations

import pytest

from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import CatalogModel
from farebox.private import bounds
from farebox.private.usage import parse_usage


def _model(**extra: object) -> CatalogModel:
    catalog = catalog_from_dict(
        {
            "providers": {"e": {"kind": "ehbp", "base_url": "http://127.0.0.1:1"}},
            "models": {
                "private/m": {
                    "provider": "T",
                    "type": "chat",
                    "context": 10_000,
                    "max_output": 500,
                    "date_added": "2026-01-01",
                    "price": {"input_per_1m": "1", "output_per_1m": "2"},
                    "routes": [{"provider": "e", "model": "m"}],
                    **extra,
                }
            },
        },
        env={},
    )
    return catalog.resolve("private/m")


def test_the_hold_is_the_plaintext_bytes_as_tokens_plus_the_output_cap() -> None:
    q = bounds.quote(_model(), 1_234)
    assert (q.input_tokens, q.output_tokens) == (1_234, 500)
    assert q.hold == 1_234 * 1_000 + 500 * 2_000


def test_a_vision_model_holds_an_allowance_per_possible_image_within_its_context() -> None:
    model = _model(image_tokens=100)
    assert bounds.quote(model, 400).input_tokens == 400 + (400 // 40) * 100
    assert bounds.quote(model, 5_000).input_tokens == 10_000  # the context caps it


def test_the_estimate_without_usage_is_bytes_over_four_and_one_token_per_event() -> None:
    model = _model()
    limit = bounds.quote(model, 1_001)
    streamed = bounds.estimate(model, limit, 1_001, bounds.Delivered(7, 9_999, event_stream=True))
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (251, 7)
    whole = bounds.estimate(model, limit, 1_001, bounds.Delivered(1, 801, event_stream=False))
    assert whole.completion_tokens == 201
    capped = bounds.estimate(model, limit, 1_001, bounds.Delivered(9_000, 0, event_stream=True))
    assert capped.completion_tokens == 500


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("prompt=12,completion=34,total=46", (12, 34, 0, None)),
        ("prompt=12, completion=34, total=46, model=kimi-k2-5", (12, 34, 0, "kimi-k2-5")),
        ("prompt=12,completion=3,cached_prompt_tokens=99", (12, 3, 12, None)),  # clamped
        ("prompt=12,completion=3,cached_prompt_tokens=-5", (12, 3, 0, None)),
        ("prompt=12,completion=3,model=<script>", (12, 3, 0, None)),
    ],
)
def test_usage_reports_are_read_with_guards(
    line: str, expected: tuple[int, int, int, str | None]
) -> None:
    usage = parse_usage(line)
    assert usage is not None
    assert (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.model,
    ) == expected


@pytest.mark.parametrize(
    "line",
    [
        None,
        "",
        "prompt=1",
        "completion=2",
        "prompt=-1,completion=2",
        "prompt=1e9,completion=2",
        "prompt=\u00b2,completion=2",  # isdigit() says yes, int() raised (at settlement)
        "prompt=1,completion=" + "9" * 30,
        "x" * 600,
    ],
)
def test_unreadable_usage_reports_count_as_missing(line: str | None) -> None:
    assert parse_usage(line) is None
