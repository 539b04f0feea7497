"""The chat reader's quick check (chat/fields.py `_plainly_valid`) accepts only bodies the
published model (ChatFields) accepts, and reads the same values from them; anything else goes
through the model and gets its 400."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farebox.chat.fields import ChatFields, _plainly_valid, read_fields
from farebox.errors import InvalidRequest
from farebox.validation import validate

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ROLE = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "bot", ""])
GOOD_MESSAGE = st.fixed_dictionaries(
    {"role": ROLE}, optional={"content": st.one_of(st.none(), st.text(max_size=10), st.just([]))}
)
ODD_MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": JSON}, optional={"content": JSON}),
    st.fixed_dictionaries({"role": ROLE, "content": JSON}),
    JSON,
)
# Mostly near-valid bodies (the quick check's edges), with every field sometimes odd.
MESSAGES = st.one_of(
    st.lists(GOOD_MESSAGE, min_size=1, max_size=3), st.lists(ODD_MESSAGE, max_size=2), JSON
)
COUNT = st.one_of(st.integers(min_value=-2, max_value=12), st.booleans(), JSON)
BODY = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.one_of(MESSAGES, MESSAGES, MESSAGES, st.nothing())},
    optional={
        "stream": st.one_of(st.booleans(), st.booleans(), JSON),
        "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": JSON}), JSON),
        "max_tokens": COUNT,
        "max_completion_tokens": COUNT,
        "n": COUNT,
        "temperature": JSON,
    },
)


def _model_reads(body: dict[str, Any]) -> tuple[Any, ...] | None:
    try:
        fields = validate(ChatFields, body)
    except InvalidRequest:
        return None
    return (fields.stream, fields.n, fields.max_tokens, fields.max_completion_tokens)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODY)
def test_the_quick_check_accepts_only_what_the_model_accepts(body: dict[str, Any]) -> None:
    body = orjson.loads(orjson.dumps(body))  # as the gateway sees it: parsed JSON
    by_model = _model_reads(body)
    if _plainly_valid(body):
        assert by_model is not None, body
        read = read_fields(body)
        assert (read.stream, read.n, read.max_tokens, read.max_completion_tokens) == by_model
    elif by_model is None:
        with pytest.raises(InvalidRequest):
            read_fields(body)  # the model's 400, not the quick check's
    else:
        read = read_fields(body)  # too unusual for the quick check, valid for the model
        assert (read.stream, read.n, read.max_tokens, read.max_completion_tokens) == by_model


def test_the_usual_bodies_take_the_quick_check() -> None:
    for body in (
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}], "n": 2},
        {
            "model": "m",
            "messages": [{"role": "system", "content": None}, {"role": "tool", "content": "x"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 10,
        },
    ):
        assert _plainly_valid(body)
        assert _model_reads(body) is not None
