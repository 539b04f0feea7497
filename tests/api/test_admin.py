"""POST /admin/credits: the operator grants credit with the admin token."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from support import ADMIN_TOKEN, NANOS, Gateway, new_account

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def grant(c: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return c.post("/admin/credits", json=body, headers=AUTH if headers is None else headers)


def assert_error(r: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and len(err["message"]) > 15
    if param is not None:
        assert err["param"] == param
    return dict(err)


def test_grant_credits_the_account(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    r = grant(c, {"credit_id": credit_id, "amount_usd": "1.25"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["status"] == "success"
    assert data["account_id"] == gateway.account_id(credit_id)
    assert credit_id not in r.text  # admin output names the account by its public id
    assert data["balance"] == 1.25 and data["available"] == 1.25
    r = grant(c, {"credit_id": credit_id, "amount_usd": 0.75})
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == 2
    assert gateway.nanos(credit_id) == (2 * NANOS, 0)
    assert gateway.check().ok


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
        {"Authorization": "Bearer"},
        {"api-key": ADMIN_TOKEN},
        {"x-admin-token": ADMIN_TOKEN},
    ],
    ids=["missing", "wrong", "longer", "basic", "no-scheme", "empty", "api-key", "custom"],
)
def test_bad_admin_token_is_refused(
    gateway: Gateway, c: httpx.Client, headers: dict[str, str]
) -> None:
    credit_id, _ = new_account(c, 0)
    r = grant(c, {"credit_id": credit_id, "amount_usd": 5}, headers=headers)
    assert r.status_code in (401, 403), r.text
    assert_error(r, r.status_code)
    assert gateway.nanos(credit_id) == (0, 0)


def test_non_ascii_admin_token_is_refused_not_a_crash(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    for value in (b"Bearer \xff\xfe", "Bearer tést-token".encode("latin-1")):
        r = c.post(
            "/admin/credits",
            json={"credit_id": credit_id, "amount_usd": 5},
            headers=[(b"Authorization", value)],
        )
        assert_error(r, 401)
    assert gateway.nanos(credit_id) == (0, 0)


def test_idempotency_key_grants_once(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    other, _ = new_account(c, 0)
    idem = "invoice-" + uuid.uuid4().hex
    first = grant(c, {"credit_id": credit_id, "amount_usd": 3, "idempotency_key": idem})
    assert first.status_code == 200, first.text
    second = grant(c, {"credit_id": credit_id, "amount_usd": 3, "idempotency_key": idem})
    assert second.status_code == 200, second.text
    assert second.json()["transfer_id"] == first.json()["transfer_id"]
    assert second.json()["balance"] == 3
    # The same key with a different amount is a mistake, not a second grant.
    r = grant(c, {"credit_id": credit_id, "amount_usd": 4, "idempotency_key": idem})
    assert_error(r, 409)
    # Idempotency keys are per account.
    r = grant(c, {"credit_id": other, "amount_usd": 3, "idempotency_key": idem})
    assert r.status_code == 200, r.text
    # Without a key every grant counts.
    grant(c, {"credit_id": credit_id, "amount_usd": 1})
    grant(c, {"credit_id": credit_id, "amount_usd": 1})
    for bad in (7, "", "   ", "x" * 201):
        r = grant(c, {"credit_id": credit_id, "amount_usd": 1, "idempotency_key": bad})
        assert_error(r, 400, "idempotency_key")
    assert gateway.nanos(credit_id) == (5 * NANOS, 0)
    assert gateway.nanos(other) == (3 * NANOS, 0)
    assert gateway.check().ok


@pytest.mark.parametrize(
    "amount",
    [-1, "-1", 0, "0", 0.0, "abc", "", None, True, False, [], {}, [1], "NaN", "Infinity",
     "1e400", 1e-12, 10**7, "1000000.01", 1e300],
    ids=lambda v: repr(v),
)  # fmt: skip
def test_bad_amounts_are_refused_and_change_nothing(
    gateway: Gateway, c: httpx.Client, amount: Any
) -> None:
    credit_id, _ = new_account(c, 1)
    err = assert_error(grant(c, {"credit_id": credit_id, "amount_usd": amount}), 400)
    assert err["param"] == "amount_usd"
    assert gateway.nanos(credit_id) == (NANOS, 0)


def test_missing_amount_is_refused(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    assert_error(grant(c, {"credit_id": credit_id}), 400, "amount_usd")
    assert gateway.nanos(credit_id) == (0, 0)


def test_unknown_or_bad_credit_id(gateway: Gateway, c: httpx.Client) -> None:
    before = gateway.nanos("grants")
    assert_error(grant(c, {"credit_id": str(uuid.uuid4()), "amount_usd": 1}), 404, "credit_id")
    for system in ("revenue", "grants", "topups"):
        assert_error(grant(c, {"credit_id": system, "amount_usd": 1}), 404, "credit_id")
    assert_error(grant(c, {"amount_usd": 1}), 400, "account_id")
    assert_error(grant(c, {"credit_id": 12, "amount_usd": 1}), 400, "credit_id")
    assert_error(grant(c, {"credit_id": "", "amount_usd": 1}), 400, "credit_id")
    assert_error(grant(c, ["x"]), 400)
    r = c.post("/admin/credits", content=b"{oops", headers=AUTH)
    assert_error(r, 400)
    assert_error(c.get("/admin/credits", headers=AUTH), 405)
    assert gateway.nanos("grants") == before


def test_concurrent_replays_of_one_grant_credit_once(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    body = {"credit_id": credit_id, "amount_usd": "2.5", "idempotency_key": uuid.uuid4().hex}
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: grant(c, body), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["transfer_id"] for r in responses}) == 1
    assert gateway.nanos(credit_id) == (2_500_000_000, 0)
    assert gateway.check().ok
