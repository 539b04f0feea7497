"""Every bad input gets a 4xx in OpenAI's error envelope with a sentence a person can act on, and
changes nothing: no balance, reservation, transfer, history row or key moves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from farebox.db.schema import accounts, api_keys, queries, transfers

from support import ADMIN_TOKEN, Gateway, new_account

MSG = [{"role": "user", "content": "hello there"}]
Body = dict[str, Any] | bytes


def nested_json(depth: int) -> bytes:
    """JSON arrays `depth` levels deep (deeper than orjson writes, so tests send them as text)."""
    return b"[" * depth + b"]" * depth


def chat_json(field: bytes, value: bytes) -> bytes:
    """A chat body (raw JSON) with `field` (quoted) set to the JSON text `value`."""
    head = b'{"model": "test-model", "messages": [{"role": "user", "content": "hi"}], '
    return head + field + b": " + value + b"}"


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def state(gateway: Gateway) -> dict[str, Any]:
    """Everything a bad request must not touch: all accounts, all keys, transfer and query counts."""
    gateway.loop.run(gateway.services.ledger.flush())

    def read(conn: Any) -> dict[str, Any]:
        return {
            "accounts": sorted(tuple(r) for r in conn.execute(select(accounts)).fetchall()),
            "keys": sorted(conn.execute(select(api_keys)).fetchall()),
            "transfers": conn.execute(select(func.count()).select_from(transfers)).scalar_one(),
            "queries": conn.execute(select(func.count()).select_from(queries)).scalar_one(),
        }

    return dict(gateway.services.db.read_sync(read))


@pytest.fixture
def unchanged(gateway: Gateway) -> Iterator[None]:
    """Asserts after the test that no money, key or history row moved.

    Transfers are append-only, so an unchanged count with unchanged accounts means nothing was
    charged and refunded either.
    """
    before = state(gateway)
    yield
    assert state(gateway) == before


@pytest.fixture(scope="module", autouse=True)
def ledger_checks(gateway: Gateway) -> Iterator[None]:
    yield
    report = gateway.check()
    assert report.ok, report.problems


@pytest.fixture(scope="module", autouse=True)
def expiring_key(c: httpx.Client) -> tuple[str, float]:
    """A key that expires a second after the module starts (tested last, so nobody waits)."""
    credit_id, _ = new_account(c, 1)
    made = c.post(
        "/keys",
        json={"name": "brief", "expire_at": iso_in(1)},
        headers={"x-credit-id": credit_id},
    ).json()["data"]
    expire = datetime.fromisoformat(made["expire_at"].replace("Z", "+00:00"))
    return made["api_key"], expire.timestamp()


@pytest.fixture(scope="module")
def account(c: httpx.Client) -> tuple[str, str]:
    """A funded account and its key, made before `unchanged` takes its first snapshot."""
    return new_account(c, 1)


def assert_error(
    r: httpx.Response, status: int, param: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/json")
    assert len(r.content) <= 1024, f"{len(r.content)} bytes: {r.text[:200]}"
    body = r.json()
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["type"], str) and err["type"]
    message = err["message"]
    assert isinstance(message, str) and len(message) > 15, message
    assert "Traceback" not in message
    if param is not None:
        assert err["param"] == param, err
        assert param.split("[")[0].split(".")[0] in message, message
    if hint is not None:
        assert hint.lower() in message.lower(), message
    return dict(err)


def send_chat(c: httpx.Client, key: str | None, body: Body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers["content-type"] = "application/json"
    return c.post("/v1/chat/completions", content=content, headers=headers)


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": MSG, **fields}


# (id, body, status, param, hint)
CHAT_CASES: list[tuple[str, Body, int, str | None, str | None]] = [
    ("malformed-json", b'{"model": "test-model", "messages": [', 400, None, "JSON"),
    ("not-json", b"model=test-model", 400, None, "JSON"),
    ("json-array", b'[{"model": "test-model"}]', 400, None, "object"),
    ("json-string", b'"hello"', 400, None, "object"),
    ("empty-body", b"", 400, None, "empty"),
    ("missing-model", {"messages": MSG}, 400, "model", "/v1/models"),
    ("model-int", {"model": 42, "messages": MSG}, 400, "model", None),
    ("model-list", {"model": ["test-model"], "messages": MSG}, 400, "model", None),
    ("model-empty", {"model": "", "messages": MSG}, 400, "model", None),
    ("model-nul", {"model": "test-model\x00", "messages": MSG}, 404, "model", None),
    ("unknown-model", {"model": "gpt-99-ultra", "messages": MSG}, 404, "model", "/v1/models"),
    ("unpriced-model", {"model": "unpriced-model", "messages": MSG}, 400, "model", "price"),
    ("messages-missing", {"model": "test-model"}, 400, "messages", None),
    ("messages-empty", chat_body(messages=[]), 400, "messages", None),
    ("messages-string", chat_body(messages="hello"), 400, "messages", None),
    ("messages-object", chat_body(messages={"role": "user"}), 400, "messages", None),
    ("messages-null", chat_body(messages=None), 400, "messages", None),
    ("message-not-object", chat_body(messages=["hello"]), 400, "messages[0]", None),
    ("message-no-role", chat_body(messages=[{"content": "hi"}]), 400, "messages[0].role", "role"),
    (
        "message-bad-role",
        chat_body(messages=[{"role": "wizard", "content": "hi"}]),
        400,
        "messages[0].role",
        "user",
    ),
    (
        "second-message-bad-role",
        chat_body(messages=[*MSG, {"role": 7, "content": "hi"}]),
        400,
        "messages[1].role",
        None,
    ),
    ("role-object", chat_body(messages=[{"role": {}}]), 400, "messages[0].role", "user"),
    ("role-array", chat_body(messages=[{"role": ["user"]}]), 400, "messages[0].role", None),
    # Nested past what orjson writes (255): the body reached the upstream call, after the hold.
    ("tools-nested-300", chat_json(b'"tools"', nested_json(300)), 400, None, "deeper than 128"),
    ("user-nested-300", chat_json(b'"user"', nested_json(300)), 400, None, "deeper than 128"),
    ("body-nested-2000", chat_json(b'"x"', nested_json(2000)), 400, None, "deeper than 128"),
    (
        "content-int",
        chat_body(messages=[{"role": "user", "content": 42}]),
        400,
        "messages[0].content",
        "string",
    ),
    (
        "content-object",
        chat_body(messages=[{"role": "user", "content": {"text": "hi"}}]),
        400,
        "messages[0].content",
        None,
    ),
    (
        "content-bool",
        chat_body(messages=[{"role": "user", "content": True}]),
        400,
        "messages[0].content",
        None,
    ),
    ("stream-string", chat_body(stream="true"), 400, "stream", "true or false"),
    ("stream-int", chat_body(stream=1), 400, "stream", None),
    (
        "stream-options-string",
        chat_body(stream=True, stream_options="x"),
        400,
        "stream_options",
        None,
    ),
    ("max-tokens-zero", chat_body(max_tokens=0), 400, "max_tokens", None),
    ("max-tokens-negative", chat_body(max_tokens=-5), 400, "max_tokens", None),
    ("max-tokens-float", chat_body(max_tokens=10.5), 400, "max_tokens", "whole number"),
    ("max-tokens-whole-float", chat_body(max_tokens=10.0), 400, "max_tokens", None),
    ("max-tokens-string", chat_body(max_tokens="10"), 400, "max_tokens", None),
    ("max-tokens-bool", chat_body(max_tokens=True), 400, "max_tokens", None),
    ("max-tokens-over-model-max", chat_body(max_tokens=4097), 400, "max_tokens", "4096"),
    (
        "max-tokens-huge",
        orjson.dumps(chat_body(max_tokens=0)).replace(b":0}", b":1" + b"0" * 30 + b"}"),
        400,
        "max_tokens",
        None,
    ),
    ("max-completion-tokens-zero", chat_body(max_completion_tokens=0), 400, None, None),
    ("n-zero", chat_body(n=0), 400, "n", None),
    ("n-too-many", chat_body(n=1000), 400, "n", None),
    ("n-string", chat_body(n="2"), 400, "n", None),
    ("n-float", chat_body(n=1.5), 400, "n", None),
    (
        "prompt-over-context",
        chat_body(messages=[{"role": "user", "content": "lorem ipsum " * 60_000}]),
        400,
        "messages",
        "context",
    ),
    (
        "prompt-over-a-million-characters",  # more than the tokenizer encodes at once
        chat_body(messages=[{"role": "user", "content": "lorem ipsum " * 100_000}]),
        400,
        "messages",
        "context",
    ),
    ("model-100k-characters", chat_body(model="x" * 100_000), 404, "model", "/v1/models"),
]


# Parsing is shared by both paths; a few cases also run with "stream": true to prove it.
STREAM_TOO = {
    "missing-model",
    "unknown-model",
    "unpriced-model",
    "messages-empty",
    "message-bad-role",
    "content-int",
    "max-tokens-over-model-max",
    "n-too-many",
    "role-object",
}


@pytest.mark.parametrize(
    ("body", "status", "param", "hint", "stream"),
    [(*case[1:], False) for case in CHAT_CASES]
    + [(*case[1:], True) for case in CHAT_CASES if case[0] in STREAM_TOO],
    ids=[case[0] for case in CHAT_CASES]
    + [f"stream-{case[0]}" for case in CHAT_CASES if case[0] in STREAM_TOO],
)
def test_bad_chat_request(
    gateway: Gateway,
    c: httpx.Client,
    account: tuple[str, str],
    unchanged: None,
    body: Body,
    status: int,
    param: str | None,
    hint: str | None,
    stream: bool,
) -> None:
    if stream:
        assert isinstance(body, dict)
        body = {**body, "stream": True}
    _, key = account
    assert_error(send_chat(c, key, body), status, param, hint)


def test_upstream_refusal_is_a_400_and_charges_nothing(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str]
) -> None:
    """The gateway passes `tools` through; the upstream refuses it after the hold was taken.

    The hold is voided (a pending and a void transfer are written), so money, key usage and
    history are unchanged.
    """
    _, key = account
    before = state(gateway)
    for stream in (False, True):
        r = send_chat(c, key, chat_body(tools="all of them", stream=stream))
        assert_error(r, 400, None, "tools")
    after = state(gateway)
    assert after["accounts"] == before["accounts"]
    assert after["queries"] == before["queries"]
    usage = [(k.id, k.period_posted, k.period_pending, k.total_posted) for k in before["keys"]]
    assert [(k.id, k.period_posted, k.period_pending, k.total_posted) for k in after["keys"]] == (
        usage
    )


def test_chat_on_the_bare_path_validates_too(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    _, key = account
    r = c.post(
        "/chat/completions",
        json={"model": "test-model", "messages": []},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert_error(r, 400, "messages")


def test_oversized_body_is_413(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    _, key = account
    limit = gateway.settings.max_body_bytes
    assert limit == 4 * 1024 * 1024
    filler = "x" * (limit + 1 - len(orjson.dumps(chat_body(user=""))))
    content = orjson.dumps(chat_body(user=filler))
    assert len(content) == limit + 1
    r = send_chat(c, key, content)
    assert_error(r, 413, None, str(limit))


def test_oversized_chunked_body_is_413(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    """No content-length to trust: the limit holds while the body streams in."""
    _, key = account
    piece = b"x" * 65536

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "test-model", "messages": [], "user": "'
        for _ in range(80):  # 5 MiB
            yield piece
        yield b'"}'

    try:
        r = c.post(
            "/v1/chat/completions",
            content=chunks(),
            headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
        )
    except httpx.TransportError:
        return  # the server may close the connection once the limit is passed
    assert_error(r, 413)


def test_body_just_under_the_limit_is_read(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    """The limit is on size, not on reading: a large valid-size body gets a normal answer."""
    _, key = account
    limit = gateway.settings.max_body_bytes
    body = chat_body(messages=[], user="")
    body["user"] = "x" * (limit - len(orjson.dumps(body)))
    content = orjson.dumps(body)
    assert len(content) == limit
    assert_error(send_chat(c, key, content), 400, "messages")


def test_a_prompt_that_spells_a_special_token_is_served(gateway: Gateway, c: httpx.Client) -> None:
    """Customer text is counted as text: "<|endoftext|>" made the tokenizer raise (a 500)."""
    _, key = new_account(c, 1)
    for stream in (False, True):
        content = "What does <|endoftext|> mean? And <|im_start|>?"
        r = send_chat(
            c, key, chat_body(messages=[{"role": "user", "content": content}], stream=stream)
        )
        assert r.status_code == 200, r.text
        assert "cost" in r.text


# ---------------------------------------------------------------------------------------------
# Authentication on the request path


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({}, "Missing API key"),
        ({"Authorization": "Bearer sk-not-a-real-key"}, "Invalid API key"),
        ({"api-key": "sk-not-a-real-key"}, "Invalid API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Missing API key"),
        ({"Authorization": "Bearer"}, "Missing API key"),
        ({"Authorization": "Bearer " + "x" * 5000}, "Invalid API key"),
    ],
    ids=["missing", "bad-bearer", "bad-api-key-header", "basic", "empty-bearer", "long"],
)
def test_chat_without_a_valid_key_is_401(
    gateway: Gateway,
    c: httpx.Client,
    account: tuple[str, str],
    unchanged: None,
    headers: dict[str, str],
    hint: str,
) -> None:
    r = c.post("/v1/chat/completions", json=chat_body(), headers=headers)
    err = assert_error(r, 401, None, hint)
    assert err["type"] == "authentication_error"


def test_revoked_key_is_401(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 1)
    made = c.post("/keys", json={"name": "gone"}, headers={"x-credit-id": credit_id}).json()
    key, key_id = made["data"]["api_key"], made["data"]["_id"]
    assert c.delete(f"/keys/{key_id}", headers={"x-credit-id": credit_id}).status_code == 200
    before = state(gateway)
    assert_error(send_chat(c, key, chat_body()), 401, None, "revoked")
    assert_error(send_chat(c, key, chat_body(stream=True)), 401, None, "revoked")
    assert state(gateway) == before


def test_insufficient_funds_is_402_with_balance(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, key = new_account(c, 0)
    cheap_id, cheap_key = new_account(c, "0.00001")
    before = state(gateway)
    for k, model, expected_balance in (
        (key, "test-model", 0),
        (cheap_key, "pricey-model", 0.00001),
    ):
        for stream in (False, True):
            r = send_chat(c, k, {"model": model, "messages": MSG, "stream": stream})
            err = assert_error(r, 402, None, "top up")
            assert err["code"] == "insufficient_funds"
            body = r.json()
            for where in (body, err):
                assert where["balance"] == expected_balance
                assert where["reserved"] == 0
                assert where["available"] == expected_balance
    assert state(gateway) == before
    assert gateway.check().ok
    assert gateway.nanos(credit_id) == (0, 0)
    assert gateway.nanos(cheap_id) == (10_000, 0)


# ---------------------------------------------------------------------------------------------
# Key management


def test_keys_endpoints_need_x_credit_id(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    credit_id, _ = account
    key_id = c.get("/keys", headers={"x-credit-id": credit_id}).json()["data"][0]["_id"]
    for headers, hint in (
        ({}, "x-credit-id"),
        ({"x-credit-id": ""}, "x-credit-id"),
        ({"x-credit-id": "00000000-0000-4000-8000-000000000000"}, "credit_id"),
        ({"x-credit-id": "revenue"}, "credit_id"),
        ({"x-credit-id": "x" * 300}, "credit_id"),
        # An API key is not an account credential for key management.
        ({"Authorization": f"Bearer {account[1]}"}, "x-credit-id"),
    ):
        for method, path, body in (
            ("GET", "/keys", None),
            ("POST", "/keys", {"name": "new"}),
            ("GET", f"/keys/{key_id}", None),
            ("PATCH", f"/keys/{key_id}", {"name": "renamed"}),
            ("DELETE", f"/keys/{key_id}", None),
        ):
            r = c.request(method, path, json=body, headers=headers)
            err = assert_error(r, 401, None, hint)
            assert err["param"] == "x-credit-id"


BAD_KEY_BODIES: list[tuple[str, Body, int, str | None]] = [
    ("name-missing", {}, 400, "name"),
    ("name-empty", {"name": ""}, 400, "name"),
    ("name-blank", {"name": "   "}, 400, "name"),
    ("name-26", {"name": "x" * 26}, 400, "name"),
    ("name-int", {"name": 123}, 400, "name"),
    ("name-null", {"name": None}, 400, "name"),
    ("name-list", {"name": ["a"]}, 400, "name"),
    ("name-nul", {"name": "a\x00b"}, 400, "name"),
    ("name-newline", {"name": "a\nb"}, 400, "name"),
    ("duplicate-name", {"name": "default"}, 409, "name"),
    ("limit-too-small", {"name": "k", "usage_limit_usd": 0.001}, 400, "usage_limit_usd"),
    ("limit-zero", {"name": "k", "usage_limit_usd": 0}, 400, "usage_limit_usd"),
    ("limit-negative", {"name": "k", "usage_limit_usd": -1}, 400, "usage_limit_usd"),
    ("limit-text", {"name": "k", "usage_limit_usd": "abc"}, 400, "usage_limit_usd"),
    ("limit-bool", {"name": "k", "usage_limit_usd": True}, 400, "usage_limit_usd"),
    ("limit-nan", {"name": "k", "usage_limit_usd": "NaN"}, 400, "usage_limit_usd"),
    ("limit-inf", {"name": "k", "usage_limit_usd": "Infinity"}, 400, "usage_limit_usd"),
    ("limit-huge", {"name": "k", "usage_limit_usd": 1e30}, 400, "usage_limit_usd"),
    ("limit-object", {"name": "k", "usage_limit_usd": {"usd": 5}}, 400, "usage_limit_usd"),
    # Decimal text that froze the event loop for 31 s ("1e999990") or overflowed (a 500).
    ("limit-exponent", {"name": "k", "usage_limit_usd": "1e999990"}, 400, "usage_limit_usd"),
    ("limit-overflow", {"name": "k", "usage_limit_usd": "1e999999"}, 400, "usage_limit_usd"),
    ("limit-neg-overflow", {"name": "k", "usage_limit_usd": "-1e999999"}, 400, "usage_limit_usd"),
    ("limit-tiny", {"name": "k", "usage_limit_usd": "1e-999999"}, 400, "usage_limit_usd"),
    ("limit-5000-digits", {"name": "k", "usage_limit_usd": "9" * 5000}, 400, "usage_limit_usd"),
    ("limit-superscript", {"name": "k", "usage_limit_usd": "\u00b2"}, 400, "usage_limit_usd"),
    ("limit-underscore", {"name": "k", "usage_limit_usd": "1_000"}, 400, "usage_limit_usd"),
    ("limit-padded", {"name": "k", "usage_limit_usd": " 5 "}, 400, "usage_limit_usd"),
    (
        "limit-sub-nanodollar",
        {"name": "k", "usage_limit_usd": "1.0000000001"},
        400,
        "usage_limit_usd",
    ),
    ("period-without-limit", {"name": "k", "reset_period": "daily"}, 400, "reset_period"),
    (
        "period-bad",
        {"name": "k", "usage_limit_usd": 1, "reset_period": "yearly"},
        400,
        "reset_period",
    ),
    ("period-empty", {"name": "k", "usage_limit_usd": 1, "reset_period": ""}, 400, "reset_period"),
    ("period-int", {"name": "k", "usage_limit_usd": 1, "reset_period": 1}, 400, "reset_period"),
    ("period-list", {"name": "k", "usage_limit_usd": 1, "reset_period": []}, 400, "reset_period"),
    ("expire-past", {"name": "k", "expire_at": "2020-01-01T00:00:00Z"}, 400, "expire_at"),
    ("expire-now-ish", {"name": "k", "expire_at": iso_in(-1)}, 400, "expire_at"),
    ("expire-not-a-date", {"name": "k", "expire_at": "next friday"}, 400, "expire_at"),
    ("expire-number", {"name": "k", "expire_at": 1893456000}, 400, "expire_at"),
    ("expire-empty", {"name": "k", "expire_at": ""}, 400, "expire_at"),
    ("unknown-field", {"name": "k", "colour": "blue"}, 400, None),
    ("set-the-key", {"name": "k", "api_key": "sk-chosen-by-me"}, 400, None),
    ("set-the-id", {"name": "k", "_id": "0" * 24}, 400, None),
    ("malformed-json", b'{"name": ', 400, None),
    ("json-array", b'[{"name": "k"}]', 400, None),
    ("empty-body", b"", 400, None),
]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [c[1:] for c in BAD_KEY_BODIES],
    ids=[c[0] for c in BAD_KEY_BODIES],
)
def test_bad_key_creation(
    gateway: Gateway,
    c: httpx.Client,
    account: tuple[str, str],
    unchanged: None,
    body: Body,
    status: int,
    param: str | None,
) -> None:
    credit_id, _ = account
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    r = c.post(
        "/keys",
        content=content,
        headers={"x-credit-id": credit_id, "content-type": "application/json"},
    )
    err = assert_error(r, status, param)
    if isinstance(body, dict) and param is None:  # unknown fields are named
        for field in set(body) - {"name"}:
            assert field in err["message"]


PATCH_CASES: list[tuple[str, Body, int, str | None]] = [
    (c[0], {k: v for k, v in c[1].items() if not (k == "name" and v == "k")}, c[2], c[3])
    for c in BAD_KEY_BODIES
    if isinstance(c[1], dict) and c[0] not in ("name-missing", "name-null", "duplicate-name")
] + [
    ("limit-null-with-period", {"usage_limit_usd": None, "reset_period": "weekly"}, 400, None),
    ("rename-to-other-key", {"name": "other"}, 409, "name"),
    ("malformed-json", b"{", 400, None),
    ("json-array", b"[]", 400, None),
]


@pytest.fixture(scope="module")
def patch_target(c: httpx.Client) -> tuple[str, str]:
    """(credit_id, key_id) of an account's first key; the account also has a key named "other"."""
    credit_id, _ = new_account(c, 0)
    hdr = {"x-credit-id": credit_id}
    assert c.post("/keys", json={"name": "other"}, headers=hdr).status_code == 201
    return credit_id, c.get("/keys", headers=hdr).json()["data"][0]["_id"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [c[1:] for c in PATCH_CASES],
    ids=[c[0] for c in PATCH_CASES],
)
def test_bad_key_patch(
    gateway: Gateway,
    c: httpx.Client,
    patch_target: tuple[str, str],
    unchanged: None,
    body: Body,
    status: int,
    param: str | None,
) -> None:
    credit_id, key_id = patch_target
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    r = c.patch(
        f"/keys/{key_id}",
        content=content,
        headers={"x-credit-id": credit_id, "content-type": "application/json"},
    )
    assert_error(r, status, param)


def test_patch_or_delete_unknown_key_is_404(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    credit_id, _ = account
    hdr = {"x-credit-id": credit_id}
    for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        for key_id in ("ffffffffffffffffffffffff", "x" * 200, "%00"):
            r = c.request(method, f"/keys/{key_id}", json=body, headers=hdr)
            assert_error(r, 404)


def test_bad_query_flags_on_keys(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    credit_id, _ = account
    for name in ("include_disabled", "show_key"):
        r = c.get("/keys", params={name: "perhaps"}, headers={"x-credit-id": credit_id})
        assert_error(r, 400, name)


# ---------------------------------------------------------------------------------------------
# Routing


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/chat/completion"),
        ("GET", "/v1/nope/deeper"),
        ("GET", "/keys/abc/extra"),
        ("POST", "/v2/chat/completions"),
    ],
)
def test_unknown_endpoint_is_404_envelope(
    gateway: Gateway, c: httpx.Client, unchanged: None, method: str, path: str
) -> None:
    r = c.request(method, path)
    err = assert_error(r, 404)
    assert path in err["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat/completions"),
        ("PUT", "/v1/chat/completions"),
        ("GET", "/accounts/create"),
        ("GET", "/credits/balance"),
        ("PUT", "/keys"),
        ("POST", "/keys/abc"),
        ("DELETE", "/v1/models"),
        ("POST", "/queries/history"),
        ("GET", "/admin/credits"),
    ],
)
def test_wrong_method_is_405_envelope(
    gateway: Gateway, c: httpx.Client, unchanged: None, method: str, path: str
) -> None:
    r = c.request(method, path)
    err = assert_error(r, 405)
    assert method in err["message"]


def test_amounts_that_froze_the_event_loop_are_refused_at_once(
    gateway: Gateway, account: tuple[str, str], patch_target: tuple[str, str], unchanged: None
) -> None:
    """ "1e999990" as an amount held the event loop for ~30 s (every other request waited) and
    "1e999999" was a 500. They are refused before any arithmetic now; the client waits 10 s,
    ample for what takes microseconds, so the old code fails here rather than passing slowly."""
    credit_id, _ = account
    owner, key_id = patch_target
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=gateway.url, timeout=10) as quick:
        for amount in ("1e999990", "-1e999990", "1e999999", "0.1e999995"):
            limit = {"name": "frozen", "usage_limit_usd": amount}
            r = quick.post("/keys", json=limit, headers={"x-credit-id": credit_id})
            assert_error(r, 400, "usage_limit_usd")
            r = quick.patch(f"/keys/{key_id}", json=limit, headers={"x-credit-id": owner})
            assert_error(r, 400, "usage_limit_usd")
            grant = {"credit_id": credit_id, "amount_usd": amount}
            assert_error(quick.post("/admin/credits", json=grant, headers=admin), 400, "amount_usd")


@pytest.mark.parametrize(
    "amount",
    ["1e999990", "1e999999", "-1e999999", "1e-999999", "\u00b2", "NaN", "9" * 5000, 1e300],
)
def test_hostile_grant_amounts_are_400(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None, amount: object
) -> None:
    credit_id, _ = account
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"credit_id": credit_id, "amount_usd": amount}
    assert_error(c.post("/admin/credits", json=body, headers=admin), 400, "amount_usd")


def test_nul_bytes_and_odd_identifiers_are_client_errors(
    gateway: Gateway, c: httpx.Client, account: tuple[str, str], unchanged: None
) -> None:
    """PostgreSQL refuses NUL in text: such ids must be a 4xx, never a 500."""
    credit_id, _ = account
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for odd in ("\x00", "a\x00b", credit_id + "\x00", "x" * 100):
        assert_error(c.post("/credits/balance", json={"credit_id": odd}), 404, "credit_id")
        r = c.post("/admin/credits", json={"credit_id": odd, "amount_usd": 1}, headers=admin)
        assert_error(r, 404, "credit_id")
        assert_error(c.get("/queries/history", params={"credit_id": odd}), 401)
        r = c.get("/queries/history", params={"credit_id": credit_id, "api_key": odd})
        assert_error(r, 404, "api_key")
        for name in ("model", "query_source", "query_type"):
            r = c.get("/queries/history", params={"credit_id": credit_id, name: "\x00"})
            assert_error(r, 400, name)


def test_expired_key_is_401(
    gateway: Gateway, c: httpx.Client, expiring_key: tuple[str, float], unchanged: None
) -> None:
    key, expire_at = expiring_key
    time.sleep(max(0.0, expire_at - time.time()) + 0.05)
    assert_error(send_chat(c, key, chat_body()), 401, None, "expired")
    assert_error(send_chat(c, key, chat_body(stream=True)), 401, None, "expired")
