"""Every bad request on /v1/messages gets Anthropic's error envelope and costs nothing."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy import func, select

from farebox.db.schema import queries

from support import NANOS, Gateway

HI = [{"role": "user", "content": "hi"}]
OK: dict[str, Any] = {"model": "test-model", "max_tokens": 10, "messages": HI}


def post(gw: Gateway, body: Any, key: str | None, path: str = "/v1/messages") -> httpx.Response:
    headers = {"x-api-key": key} if key else {}
    with gw.client() as c:
        if isinstance(body, bytes):
            return c.post(path, content=body, headers=headers)
        return c.post(path, json=body, headers=headers)


def assert_envelope(r: httpx.Response, status: int, error_type: str) -> str:
    assert r.status_code == status, r.text[:500]
    assert len(r.content) <= 1024, f"{len(r.content)} bytes: {r.text[:200]}"
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    message = body["error"]["message"]
    assert isinstance(message, str) and len(message) > 10
    return str(message)


def assert_untouched(gw: Gateway, credit_id: str, granted: int = NANOS) -> None:
    assert gw.nanos(credit_id) == (granted, 0)
    assert history_rows(gw, credit_id) == 0


def history_rows(gw: Gateway, credit_id: str) -> int:
    gw.loop.run(gw.services.ledger.flush())
    account_id = gw.account_id(credit_id)
    return int(
        gw.services.db.read_sync(
            lambda conn: conn.execute(
                select(func.count()).select_from(queries).where(queries.c.account_id == account_id)
            ).scalar_one()
        )
    )


BAD_BODIES: list[tuple[str, Any, str]] = [
    # Anthropic-run tools that add input nobody held for (fetched pages, code output, MCP)
    ("web_fetch tool", {**OK, "tools": [{"type": "web_fetch_20250910", "name": "f"}]}, "web_fetch"),
    (
        "code execution tool",
        {**OK, "tools": [{"type": "code_execution_20250825", "name": "c"}]},
        "tools.0.type",
    ),
    ("tool type a list", {**OK, "tools": [{"type": ["x"], "name": "c"}]}, "tools.0.type"),
    (
        "mcp servers",
        {**OK, "mcp_servers": [{"type": "url", "url": "https://example.com", "name": "m"}]},
        "mcp_servers",
    ),
    ("container", {**OK, "container": "container_011"}, "container"),
    ("not json", b"{not json", "JSON"),
    ("not an object", [1, 2], "object"),
    ("no model", {"max_tokens": 10, "messages": HI}, "model"),
    ("no max_tokens", {"model": "test-model", "messages": HI}, "max_tokens"),
    ("max_tokens zero", {**OK, "max_tokens": 0}, "max_tokens"),
    ("max_tokens string", {**OK, "max_tokens": "10"}, "max_tokens"),
    ("no messages", {**OK, "messages": []}, "messages"),
    ("messages not a list", {**OK, "messages": "hi"}, "messages"),
    ("bad role", {**OK, "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ("role an object", {**OK, "messages": [{"role": {}, "content": "x"}]}, "messages.0.role"),
    ("role a list", {**OK, "messages": [{"role": ["user"], "content": "x"}]}, "messages.0.role"),
    (
        "block type 100k characters",
        {**OK, "messages": [{"role": "user", "content": [{"type": "x" * 100_000}]}]},
        "is not a user content block",
    ),
    (
        "block type nested 300 deep",  # its repr in the message overflowed Python's stack
        b'{"model": "test-model", "max_tokens": 10, "messages": [{"role": "user", "content": '
        + b'[{"type": '
        + b"[" * 300
        + b"]" * 300
        + b"}]}]}",
        "deeper than 128",
    ),
    (
        "tool schema nested 300 deep",
        b'{"model": "test-model", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],'
        + b' "tools": [{"name": "f", "input_schema": {"type": "object", "p": '
        + b"[" * 300
        + b"]" * 300
        + b"}}]}",
        "deeper than 128",
    ),
    ("no content", {**OK, "messages": [{"role": "user"}]}, "messages.0.content"),
    (
        "content a number",
        {**OK, "messages": [{"role": "user", "content": 5}]},
        "messages.0.content",
    ),
    (
        "unknown block",
        {**OK, "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
        "video",
    ),
    (
        "text block without text",
        {**OK, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "messages.0.content.0.text",
    ),
    (
        "tool_use input not an object",
        {
            **OK,
            "messages": [
                *HI,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": "x"}],
                },
            ],
        },
        "messages.1.content.0.input",
    ),
    (
        "tool_result without id",
        {**OK, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
        "tool_use_id",
    ),
    (
        "image from the files api",
        {
            **OK,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ],
        },
        "source.type",
    ),
    (
        "thinking block in a user turn",
        {
            **OK,
            "messages": [
                {"role": "user", "content": [{"type": "thinking", "thinking": "x"}]},
            ],
        },
        "thinking",
    ),
    ("system a number", {**OK, "system": 3}, "system"),
    ("system image block", {**OK, "system": [{"type": "image"}]}, "system.0"),
    ("thinking type", {**OK, "thinking": {"type": "sometimes"}}, "thinking.type"),
    ("thinking budget", {**OK, "thinking": {"type": "enabled"}}, "budget_tokens"),
    ("tools not a list", {**OK, "tools": {"name": "f"}}, "tools"),
    ("tool without schema", {**OK, "tools": [{"name": "f"}]}, "tools.0.input_schema"),
    ("tool_choice type", {**OK, "tool_choice": {"type": "some"}}, "tool_choice.type"),
    ("stop_sequences", {**OK, "stop_sequences": "###"}, "stop_sequences"),
    ("temperature", {**OK, "temperature": 5}, "temperature"),
    ("stream", {**OK, "stream": "yes"}, "stream"),
    ("metadata", {**OK, "metadata": "x"}, "metadata"),
]


@pytest.mark.parametrize(("name", "body", "mentions"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_request_is_400_in_anthropic_envelope_and_free(
    gateway: Gateway, name: str, body: Any, mentions: str
) -> None:
    credit_id, key = gateway.create_account(1)
    message = assert_envelope(post(gateway, body, key), 400, "invalid_request_error")
    assert mentions in message
    assert_untouched(gateway, credit_id)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_missing_and_wrong_keys_are_authentication_errors(gateway: Gateway, path: str) -> None:
    message = assert_envelope(post(gateway, OK, None, path), 401, "authentication_error")
    assert "x-api-key" in message
    assert_envelope(post(gateway, OK, "sk-not-a-key", path), 401, "authentication_error")


def test_unknown_model_is_not_found(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    message = assert_envelope(
        post(gateway, {**OK, "model": "no-such-model"}, key), 404, "not_found_error"
    )
    assert "GET /v1/models" in message
    long_id = {**OK, "model": "m" * 100_000}  # echoed cut short (assert_envelope checks)
    assert "GET /v1/models" in assert_envelope(post(gateway, long_id, key), 404, "not_found_error")
    assert_untouched(gateway, credit_id)


def test_unpriced_model_is_refused(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    assert_envelope(
        post(gateway, {**OK, "model": "unpriced-model"}, key), 400, "invalid_request_error"
    )
    assert_untouched(gateway, credit_id)


def test_empty_balance_is_a_billing_error_with_the_balance(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(0)
    r = post(gateway, OK, key)
    message = assert_envelope(r, 402, "billing_error")
    assert "Top up" in message
    error = r.json()["error"]
    assert error["code"] == "insufficient_funds"
    assert error["balance"] == 0 and error["available"] == 0
    assert_untouched(gateway, credit_id, 0)


def test_sdk_raises_typed_errors(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    sdk = anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(model="nope", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(model="test-model", max_tokens=5, messages=[])
    bad = anthropic.Anthropic(api_key="sk-wrong", base_url=gateway.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="test-model", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert_untouched(gateway, credit_id)


@pytest.mark.parametrize("stream", [False, True])
def test_every_route_failing_is_an_api_error_and_free(gateway: Gateway, stream: bool) -> None:
    credit_id, key = gateway.create_account(1)
    r = post(gateway, {**OK, "model": "failing-model", "stream": stream}, key)
    message = assert_envelope(r, 502, "api_error")
    assert "Nothing was charged" in message
    assert_untouched(gateway, credit_id)


def test_every_route_busy_is_overloaded_with_retry_after(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    r = post(gateway, {**OK, "model": "busy-model"}, key)
    assert_envelope(r, 503, "overloaded_error")
    assert r.headers["retry-after"]
    assert_untouched(gateway, credit_id)


def test_count_tokens_bad_input_is_400(gateway: Gateway) -> None:
    _, key = gateway.create_account(1)
    path = "/v1/messages/count_tokens"
    assert_envelope(post(gateway, {"model": "test-model"}, key, path), 400, "invalid_request_error")
    assert_envelope(post(gateway, {"messages": HI}, key, path), 400, "invalid_request_error")
