"""Wire models: a failed validation is one clear 400 naming the field, never a 500."""

from __future__ import annotations

import pytest

from farebox.anthropic.fields import CountTokensFields, MessagesFields, read_messages_fields
from farebox.api.wire.accounts import AdminGrant, KeyCreate, KeyPatch
from farebox.api.wire.chat import ChatCompletionRequest, CountTokensRequest, MessagesRequest
from farebox.api.wire.media import EmbeddingsRequest, ImageGenerationRequest
from farebox.api.wire.payments import HistoryQuery, TopupCreate
from farebox.chat.fields import read_fields
from farebox.errors import InvalidRequest
from farebox.money import MoneyError
from farebox.validation import validate


def refused(model: type, body: dict) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate(model, body)
    return caught.value


@pytest.mark.parametrize(
    ("model", "body", "param", "words"),
    [
        (KeyCreate, {"name": "k", "colour": "red"}, "colour", "Unknown field(s): colour"),
        (KeyCreate, {}, "name", "name is required"),
        (KeyPatch, {"name": None}, "name", "name must be"),
        (KeyCreate, {"name": "k", "usage_limit_usd": "1e999990"}, "usage_limit_usd", ""),
        (AdminGrant, {"credit_id": "c"}, "amount_usd", "amount_usd must be a number"),
        (TopupCreate, {"amount": "9" * 5000, "currency": "USD"}, "amount", "at most 40"),
        (HistoryQuery, {"page": "²"}, "page", "whole number"),
        (EmbeddingsRequest, {"model": "m", "input": [1, "a"]}, "input", "token ids"),
        (ImageGenerationRequest, {"model": "m", "n": 9}, "n", "out of range"),
        (ChatCompletionRequest, {"model": "m", "messages": [{"role": {}}]}, "messages[0].role", ""),
        (
            ChatCompletionRequest,
            {"model": "m", "messages": [{"content": "x"}]},
            "messages[0].role",
            "required",
        ),
        (
            ChatCompletionRequest,
            {"model": "m", "messages": [{"role": "user", "content": {"a": 1}}]},
            "messages[0].content",
            "must be",
        ),
        (ChatCompletionRequest, {"model": "m", "messages": []}, "messages", "must not be empty"),
    ],
)
def test_refusals_name_the_field_and_never_echo_the_value(
    model: type, body: dict, param: str, words: str
) -> None:
    err = refused(model, body)
    assert err.status == 400 and err.param == param
    assert words in err.message
    assert len(err.message) < 300  # a 5,000-digit amount is not repeated


def test_money_errors_from_a_validator_keep_their_own_message() -> None:
    err = refused(KeyCreate, {"name": "k", "usage_limit_usd": "NaN"})
    assert isinstance(err, MoneyError) and err.param == "usage_limit_usd"


def test_chat_fields_are_read_without_touching_the_body() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi", "name": "x"}],
        "max_tokens": 5,
        "logit_bias": {"1": 2},
        "some_new_upstream_option": [1, 2],
    }
    before = repr(body)
    fields = read_fields(body)
    assert fields.max_tokens == 5 and fields.stream is None
    assert repr(body) == before  # passed through unchanged, unknown fields included


def test_unknown_field_names_are_cut_short() -> None:
    body = {"name": "k", **{f"{i}" + "x" * 10_000: 1 for i in range(100)}}
    err = refused(KeyCreate, body)
    assert err.message.startswith("Unknown field(s): ") and len(err.message) < 400


def test_messages_validate_with_the_fields_the_schema_publishes() -> None:
    """/v1/messages and count_tokens read their top-level fields through the models
    /openapi.json extends (anthropic/fields.py); blocks are then read by the translator."""
    assert issubclass(MessagesRequest, MessagesFields)
    assert issubclass(CountTokensRequest, CountTokensFields)
    body = {"model": "m", "max_tokens": 5, "messages": ["whatever the translator reads"], "x": 1}
    before = repr(body)
    assert read_messages_fields(body).max_tokens == 5
    assert repr(body) == before  # the native body is passed through as written
    for bad, param in [
        ({"model": "m", "messages": [1]}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": [1]}, "max_tokens"),
        ({"model": "", "max_tokens": 1, "messages": [1]}, "model"),
        ({"model": "m", "max_tokens": 1, "messages": [1], "stream": "yes"}, "stream"),
        ({"model": "m", "max_tokens": 1, "messages": [1], "metadata": []}, "metadata"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            read_messages_fields(bad)
        assert caught.value.param == param
