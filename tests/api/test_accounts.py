"""POST /accounts/create and POST /credits/balance."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from support import NANOS, Gateway, new_account


def balance(c: httpx.Client, **kwargs: Any) -> httpx.Response:
    return c.post("/credits/balance", **kwargs)


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and len(err["message"]) > 15
    if code is not None:
        assert err["code"] == code
    return dict(err)


def test_create_account_returns_credit_id_and_a_working_key(
    gateway: Gateway, c: httpx.Client
) -> None:
    r = c.post("/accounts/create")
    assert r.status_code in (200, 201), r.text
    data = r.json()
    assert set(data) >= {"credit_id", "account_id", "api_key", "api_key_id"}
    uuid.UUID(data["credit_id"])
    assert data["account_id"].startswith("acct_") and data["credit_id"] not in data["account_id"]
    assert data["api_key"].startswith("sk-")
    keys = c.get("/keys", headers={"x-credit-id": data["credit_id"]}).json()["data"]
    assert [k["_id"] for k in keys] == [data["api_key_id"]]
    other = c.post("/accounts/create").json()
    assert other["credit_id"] != data["credit_id"]
    assert other["api_key"] != data["api_key"]
    assert other["api_key_id"] != data["api_key_id"]
    assert other["account_id"] != data["account_id"]


def test_new_account_has_zero_balance(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    r = balance(c, json={"credit_id": credit_id})
    assert r.status_code == 200, r.text
    account_id = gateway.account_id(credit_id)
    assert r.json() == {
        "credit_id": credit_id,
        "account_id": account_id,
        "balance": 0,
        "reserved": 0,
        "available": 0,
    }
    assert gateway.nanos(credit_id) == (0, 0)


def test_grant_shows_in_balance(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, "2.5")
    data = balance(c, json={"credit_id": credit_id}).json()
    account_id = gateway.account_id(credit_id)
    assert data == {
        **{"credit_id": credit_id, "account_id": account_id},
        **{"balance": 2.5, "reserved": 0, "available": 2.5},
    }
    assert gateway.nanos(credit_id) == (2_500_000_000, 0)
    assert gateway.check().ok


def test_balance_with_an_api_key_shows_the_balance_and_the_keys_usage_not_the_credit_id(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, key = new_account(c, 1)
    account_id = gateway.account_id(credit_id)
    for headers in ({"Authorization": f"Bearer {key}"}, {"api-key": key}):
        for extra in ({}, {"content": b""}, {"json": {}}):
            r = balance(c, headers=headers, **extra)
            assert r.status_code == 200, r.text
            data = r.json()
            assert "credit_id" not in data and credit_id not in r.text
            assert data["account_id"] == account_id
            assert (data["balance"], data["reserved"], data["available"]) == (1, 0, 1)
            assert data["key"]["usage_limit_usd"] is None
            assert data["key"]["current_period_usage_usd"] == 0
            assert "api_key" not in data["key"]


def test_balance_follows_spending(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, key = new_account(c, 1)
    r = c.post(
        "/v1/chat/completions",
        json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.text
    cost = round(r.json()["usage"]["cost"] * NANOS)
    data = balance(c, json={"credit_id": credit_id}).json()
    assert round(data["balance"] * NANOS) == NANOS - cost
    assert data["reserved"] == 0
    assert data["available"] == data["balance"]


def test_unknown_credit_id_is_404(gateway: Gateway, c: httpx.Client) -> None:
    for credit_id in (str(uuid.uuid4()), "nope", "x" * 500):
        err = assert_error(balance(c, json={"credit_id": credit_id}), 404, "not_found")
        assert err["param"] == "credit_id"
        assert "/accounts/create" in err["message"]


@pytest.mark.parametrize("system_account", ["revenue", "grants", "topups"])
def test_system_accounts_are_not_customer_balances(
    gateway: Gateway, c: httpx.Client, system_account: str
) -> None:
    """The operator's revenue and grant totals are not readable as somebody's credit_id."""
    _credit_id, key = new_account(c, 1)
    c.post(
        "/v1/chat/completions",
        json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert_error(balance(c, json={"credit_id": system_account}), 404)


def test_balance_bad_requests(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    assert_error(balance(c), 400)  # neither credit_id nor key
    assert_error(balance(c, json={"credit_id": 42}), 400)
    assert_error(balance(c, json=[credit_id]), 400)
    assert_error(balance(c, content=b"{not json"), 400)
    assert_error(balance(c, headers={"Authorization": "Bearer sk-nope"}), 401)
    assert_error(c.get("/credits/balance"), 405)
    assert_error(c.get("/accounts/create"), 405)
