"""GET/POST /keys and GET/PATCH/DELETE /keys/{id}: PPQ's shapes, limits, expiry, soft revoke."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from farebox.db.schema import api_keys, metadata

from support import NANOS, Gateway, new_account

PROMPT = [{"role": "user", "content": "Say something short"}]


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def hdr(credit_id: str) -> dict[str, str]:
    return {"x-credit-id": credit_id}


def chat(c: httpx.Client, key: str, model: str = "test-model", **extra: Any) -> httpx.Response:
    return c.post(
        "/v1/chat/completions",
        json={"model": model, "messages": PROMPT, **extra},
        headers={"Authorization": f"Bearer {key}"},
    )


def create_key(c: httpx.Client, credit_id: str, **body: Any) -> dict[str, Any]:
    r = c.post("/keys", json=body, headers=hdr(credit_id))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "success"
    return dict(r.json()["data"])


def get_key(c: httpx.Client, credit_id: str, key_id: str, **params: str) -> dict[str, Any]:
    r = c.get(f"/keys/{key_id}", headers=hdr(credit_id), params=params)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and len(err["message"]) > 15
    if code is not None:
        assert err["code"] == code
    return dict(err)


@pytest.fixture(scope="module", autouse=True)
def expiring(c: httpx.Client) -> tuple[str, dict[str, Any]]:
    """A key that works now and expires 1.5 s later (tested last in the module: no waiting)."""
    credit_id, _ = new_account(c, 1)
    made = create_key(c, credit_id, name="expiring", expire_at=iso_in(1.5))
    assert chat(c, made["api_key"]).status_code == 200
    return credit_id, made


KEY_FIELDS = {
    "_id",
    "name",
    "usage_limit_usd",
    "current_period_usage_usd",
    "total_usage_all_time_usd",
    "reset_period",
    "reset_at",
    "expire_at",
    "created_at",
    "updated_at",
    "deleted_at",
}


def test_create_list_get_patch_delete_round_trip(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    expire = iso_in(86_400 * 30)
    before = time.time()
    made = create_key(
        c,
        credit_id,
        name="ci-bot",
        usage_limit_usd=5,
        reset_period="monthly",
        expire_at=expire,
    )
    assert set(made) >= KEY_FIELDS
    assert re.fullmatch(r"[0-9a-f]{24}", made["_id"])
    assert made["name"] == "ci-bot"
    assert made["api_key"].startswith("sk-") and len(made["api_key"]) > 30
    assert made["usage_limit_usd"] == 5
    assert made["current_period_usage_usd"] == 0
    assert made["reset_period"] == "monthly"
    reset_at = parse_iso(made["reset_at"])
    assert reset_at > datetime.now(UTC) and reset_at.day == 1 and reset_at.hour == 0
    assert abs(parse_iso(made["expire_at"]).timestamp() - parse_iso(expire).timestamp()) < 1
    assert parse_iso(made["created_at"]).timestamp() >= before - 1
    assert made["deleted_at"] is None

    listed = c.get("/keys", headers=hdr(credit_id))
    assert listed.status_code == 200
    body = listed.json()
    assert body["status"] == "success"
    names = [k["name"] for k in body["data"]]
    assert names == ["default", "ci-bot"]
    for k in body["data"]:
        assert set(k) >= KEY_FIELDS
        assert "api_key" not in k  # only with show_key=true

    got = get_key(c, credit_id, made["_id"])
    assert "api_key" not in got
    assert {k: got[k] for k in KEY_FIELDS} == {k: made[k] for k in KEY_FIELDS}

    r = c.patch(
        f"/keys/{made['_id']}",
        json={"name": "ci-bot-2", "expire_at": None},
        headers=hdr(credit_id),
    )
    assert r.status_code == 200, r.text
    patched = r.json()["data"]
    assert patched["name"] == "ci-bot-2"
    assert patched["expire_at"] is None
    assert patched["usage_limit_usd"] == 5  # fields not sent are kept
    assert patched["reset_period"] == "monthly"
    assert parse_iso(patched["updated_at"]) >= parse_iso(made["updated_at"])
    assert get_key(c, credit_id, made["_id"])["name"] == "ci-bot-2"

    r = c.delete(f"/keys/{made['_id']}", headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success", "message": "API key revoked successfully"}

    active = c.get("/keys", headers=hdr(credit_id)).json()["data"]
    assert [k["name"] for k in active] == ["default"]
    everything = c.get("/keys", headers=hdr(credit_id), params={"include_disabled": "true"}).json()[
        "data"
    ]
    revoked = [k for k in everything if k["_id"] == made["_id"]]
    assert len(revoked) == 1 and revoked[0]["deleted_at"] is not None
    # A revoked key is still readable by id, with deleted_at set.
    assert get_key(c, credit_id, made["_id"])["deleted_at"] is not None


def test_new_key_authenticates_chat_and_is_metered_on_the_key(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, default_key = new_account(c, 1)
    made = create_key(c, credit_id, name="worker")
    before, _ = gateway.nanos(credit_id)
    r = chat(c, made["api_key"])
    assert r.status_code == 200, r.text
    after, reserved = gateway.nanos(credit_id)
    assert reserved == 0
    spent = before - after
    assert spent > 0
    assert round(r.json()["usage"]["cost"] * NANOS) == spent
    key = get_key(c, credit_id, made["_id"])
    assert round(key["total_usage_all_time_usd"] * NANOS) == spent
    assert round(key["current_period_usage_usd"] * NANOS) == spent
    # The other key of the same account was not charged against.
    default_id = c.get("/keys", headers=hdr(credit_id)).json()["data"][0]["_id"]
    assert get_key(c, credit_id, default_id)["total_usage_all_time_usd"] == 0
    assert chat(c, default_key).status_code == 200
    assert gateway.check().ok


def test_show_key_returns_the_same_key(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, default_key = new_account(c, 0)
    made = create_key(c, credit_id, name="shown")
    assert get_key(c, credit_id, made["_id"], show_key="true")["api_key"] == made["api_key"]
    assert "api_key" not in get_key(c, credit_id, made["_id"], show_key="false")
    listed = c.get("/keys", headers=hdr(credit_id), params={"show_key": "true"}).json()
    by_name = {k["name"]: k["api_key"] for k in listed["data"]}
    assert by_name == {"default": default_key, "shown": made["api_key"]}
    # The hint shows a little of the key, never the whole.
    hint = get_key(c, credit_id, made["_id"]).get("key_hint")
    if hint is not None:
        assert made["api_key"] not in hint


def test_keys_are_not_stored_in_plaintext(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, default_key = new_account(c, 0)
    made = create_key(c, credit_id, name="secret")
    raws = [default_key, made["api_key"]]

    def dump(conn: Any) -> list[str]:
        values: list[str] = []
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).fetchall():
                values.extend(str(v) for v in row)
        return values

    values = gateway.services.db.read_sync(dump)
    for raw in raws:
        secret_part = raw[len("sk-") :]
        assert not [v for v in values if secret_part in v], "an API key is stored in plaintext"

    account_id = gateway.account_id(credit_id)

    def key_rows(conn: Any) -> list[Any]:
        return list(
            conn.execute(select(api_keys).where(api_keys.c.account_id == account_id)).fetchall()
        )

    rows = gateway.services.db.read_sync(key_rows)
    assert len(rows) == 2
    for row in rows:
        assert row.key_hash not in raws and row.key_encrypted not in raws


def test_revoked_key_is_refused_at_once(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 1)
    made = create_key(c, credit_id, name="short-lived")
    assert chat(c, made["api_key"]).status_code == 200  # now cached as live
    before = gateway.nanos(credit_id)
    r = c.delete(f"/keys/{made['_id']}", headers=hdr(credit_id))
    assert r.status_code == 200
    err = assert_error(chat(c, made["api_key"]), 401)
    assert "revoked" in err["message"]
    assert gateway.nanos(credit_id) == before
    # The key also stops working on the other customer surfaces.
    assert_error(
        c.post("/credits/balance", headers={"Authorization": f"Bearer {made['api_key']}"}),
        401,
    )
    # Revoking twice is harmless; a revoked key cannot be edited back to life.
    assert c.delete(f"/keys/{made['_id']}", headers=hdr(credit_id)).status_code == 200
    r = c.patch(f"/keys/{made['_id']}", json={"name": "again"}, headers=hdr(credit_id))
    assert 400 <= r.status_code < 500
    assert_error(chat(c, made["api_key"]), 401)


def test_another_accounts_key_is_not_found(gateway: Gateway, c: httpx.Client) -> None:
    alice, _ = new_account(c, 1)
    mallory, _ = new_account(c, 0)
    made = create_key(c, alice, name="alice-key")
    path = f"/keys/{made['_id']}"
    assert_error(c.get(path, headers=hdr(mallory)), 404)
    assert_error(c.get(path, headers=hdr(mallory), params={"show_key": "true"}), 404)
    assert_error(c.patch(path, json={"name": "pwned"}, headers=hdr(mallory)), 404)
    assert_error(c.delete(path, headers=hdr(mallory)), 404)
    assert_error(c.get("/keys/000000000000000000000000", headers=hdr(alice)), 404)
    listed = c.get("/keys", headers=hdr(mallory)).json()["data"]
    assert made["_id"] not in [k["_id"] for k in listed]
    # Nothing Mallory did touched the key.
    key = get_key(c, alice, made["_id"])
    assert key["name"] == "alice-key" and key["deleted_at"] is None
    assert chat(c, made["api_key"]).status_code == 200


def test_key_usage_limit_is_enforced_and_never_exceeded(gateway: Gateway, c: httpx.Client) -> None:
    # pricey-model: $1000/1M input, $2000/1M output, so a $0.05 limit lasts a request or two.
    credit_id, _ = new_account(c, 10)
    limit_usd = 0.05
    made = create_key(c, credit_id, name="capped", usage_limit_usd=limit_usd)
    statuses: list[int] = []
    codes: list[str | None] = []
    for _ in range(10):
        r = chat(c, made["api_key"], model="pricey-model", max_tokens=8)
        statuses.append(r.status_code)
        if r.status_code != 200:
            codes.append(r.json()["error"]["code"])
            break
    assert statuses[0] == 200
    assert statuses[-1] == 402, statuses
    assert codes == ["key_limit_reached"]
    body = r.json()
    assert "usage_limit_usd" in body["error"]["message"]
    # The account still has money: it is the key that is spent.
    balance = c.post("/credits/balance", json={"credit_id": credit_id}).json()
    assert balance["available"] > 9
    key = get_key(c, credit_id, made["_id"])
    assert 0 < key["current_period_usage_usd"] <= limit_usd
    # Another key of the same account still works.
    other = create_key(c, credit_id, name="uncapped")
    assert chat(c, other["api_key"], model="pricey-model", max_tokens=8).status_code == 200
    assert gateway.check().ok


def test_concurrent_requests_never_overspend_a_key_limit(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 10)
    limit_usd = 0.2
    made = create_key(c, credit_id, name="racy", usage_limit_usd=limit_usd)
    before, _ = gateway.nanos(credit_id)

    def one(i: int) -> int:
        extra: dict[str, Any] = {"stream": True} if i % 2 else {}
        return chat(c, made["api_key"], model="pricey-model", max_tokens=20, **extra).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(24)))
    assert set(statuses) <= {200, 402}, statuses
    assert 200 in statuses and 402 in statuses
    after, reserved = gateway.nanos(credit_id)
    assert reserved == 0
    key = get_key(c, credit_id, made["_id"])
    assert key["current_period_usage_usd"] <= limit_usd
    assert round(key["total_usage_all_time_usd"] * NANOS) == before - after
    assert before - after <= limit_usd * NANOS
    assert gateway.check().ok


def test_patch_reset_period_resets_usage_and_null_limit_removes_it(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, _ = new_account(c, 10)
    made = create_key(c, credit_id, name="resettable", usage_limit_usd=0.05)
    path = f"/keys/{made['_id']}"
    for _ in range(10):
        if chat(c, made["api_key"], model="pricey-model", max_tokens=8).status_code == 402:
            break
    spent = get_key(c, credit_id, made["_id"])
    assert spent["current_period_usage_usd"] > 0
    assert_error(chat(c, made["api_key"], model="pricey-model", max_tokens=8), 402)

    # Changing the limit alone keeps the period's usage.
    r = c.patch(path, json={"usage_limit_usd": 0.06}, headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["current_period_usage_usd"] == spent["current_period_usage_usd"]
    assert r.json()["data"]["usage_limit_usd"] == 0.06

    r = c.patch(path, json={"reset_period": "daily"}, headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["reset_period"] == "daily"
    assert data["current_period_usage_usd"] == 0
    used = chat(c, made["api_key"], model="pricey-model", max_tokens=1)
    assert used.status_code == 200, used.text
    # Sending the period the key already has (a whole-object PATCH) is not a change: no reset.
    r = c.patch(path, json={"name": "resettable", "reset_period": "daily"}, headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    kept = round(r.json()["data"]["current_period_usage_usd"] * NANOS)
    assert kept == round(used.json()["usage"]["cost"] * NANOS) > 0
    r = c.patch(path, json={"reset_period": "weekly"}, headers=hdr(credit_id))
    assert r.json()["data"]["current_period_usage_usd"] == 0
    r = c.patch(path, json={"reset_period": "daily"}, headers=hdr(credit_id))
    data = r.json()["data"]
    assert data["current_period_usage_usd"] == 0
    total = round(data["total_usage_all_time_usd"] * NANOS)
    assert total == round(spent["total_usage_all_time_usd"] * NANOS) + kept
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert parse_iso(data["reset_at"]) == datetime(
        tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC
    )
    assert get_key(c, credit_id, made["_id"])["current_period_usage_usd"] == 0
    # A fresh period: the key can spend again, up to its limit.
    assert chat(c, made["api_key"], model="pricey-model", max_tokens=8).status_code == 200
    assert 0 < get_key(c, credit_id, made["_id"])["current_period_usage_usd"] <= 0.06

    r = c.patch(path, json={"usage_limit_usd": None}, headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["usage_limit_usd"] is None
    # reset_period requires a limit, so it goes with it.
    assert data["reset_period"] is None and data["reset_at"] is None
    # Spend well past the old limit.
    for _ in range(4):
        r = chat(c, made["api_key"], model="pricey-model", max_tokens=8)
        assert r.status_code == 200, r.text
    assert get_key(c, credit_id, made["_id"])["current_period_usage_usd"] > 0.06
    assert gateway.check().ok


def test_names_are_unique_among_active_keys(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    other, _ = new_account(c, 0)
    first = create_key(c, credit_id, name="dup")
    assert_error(c.post("/keys", json={"name": "dup"}, headers=hdr(credit_id)), 409)
    # Unique per account, not globally.
    create_key(c, other, name="dup")
    second = create_key(c, credit_id, name="dup-2")
    r = c.patch(f"/keys/{second['_id']}", json={"name": "dup"}, headers=hdr(credit_id))
    assert_error(r, 409)
    # Renaming a key to its own name is not a conflict.
    r = c.patch(f"/keys/{first['_id']}", json={"name": "dup"}, headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    # Once revoked, a name is free again.
    c.delete(f"/keys/{first['_id']}", headers=hdr(credit_id))
    again = create_key(c, credit_id, name="dup")
    assert again["_id"] != first["_id"]
    # 25 characters is allowed.
    assert create_key(c, credit_id, name="x" * 25)["name"] == "x" * 25


def test_expired_key_is_refused(
    gateway: Gateway, c: httpx.Client, expiring: tuple[str, dict[str, Any]]
) -> None:
    credit_id, made = expiring
    time.sleep(max(0.0, parse_iso(made["expire_at"]).timestamp() - time.time()) + 0.05)
    before = gateway.nanos(credit_id)
    err = assert_error(chat(c, made["api_key"]), 401)
    assert "expired" in err["message"]
    assert gateway.nanos(credit_id) == before
    # Expired is not revoked: the key is still listed, with its expiry.
    listed = c.get("/keys", headers=hdr(credit_id)).json()["data"]
    assert made["_id"] in [k["_id"] for k in listed]
    # Moving expire_at into the future revives it.
    r = c.patch(f"/keys/{made['_id']}", json={"expire_at": iso_in(3600)}, headers=hdr(credit_id))
    assert r.status_code == 200, r.text
    assert chat(c, made["api_key"]).status_code == 200


def test_concurrent_creates_with_one_name_make_one_key(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)

    def one(_: int) -> int:
        return c.post("/keys", json={"name": "race"}, headers=hdr(credit_id)).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(one, range(8)))
    assert statuses == [201] + [409] * 7
    names = [k["name"] for k in c.get("/keys", headers=hdr(credit_id)).json()["data"]]
    assert names.count("race") == 1


def test_a_new_period_starts_from_zero(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 10)
    made = create_key(c, credit_id, name="daily", usage_limit_usd=0.05, reset_period="daily")
    for _ in range(10):
        if chat(c, made["api_key"], model="pricey-model", max_tokens=8).status_code == 402:
            break
    spent = get_key(c, credit_id, made["_id"])
    assert spent["current_period_usage_usd"] > 0
    assert_error(chat(c, made["api_key"], model="pricey-model", max_tokens=8), 402)

    # Make the counter's period yesterday's, as if the clock had passed midnight.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    def age(conn: Any) -> None:
        row = conn.execute(select(api_keys).where(api_keys.c.id == made["_id"])).one()
        generation, period, _day = row.period_key.split(":")
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == made["_id"])
            .values(period_key=f"{generation}:{period}:{yesterday}")
        )

    gateway.services.db.write_sync(age)
    assert get_key(c, credit_id, made["_id"])["current_period_usage_usd"] == 0
    r = chat(c, made["api_key"], model="pricey-model", max_tokens=8)
    assert r.status_code == 200, r.text
    key = get_key(c, credit_id, made["_id"])
    assert round(key["current_period_usage_usd"] * NANOS) == round(
        r.json()["usage"]["cost"] * NANOS
    )
    assert key["total_usage_all_time_usd"] > spent["total_usage_all_time_usd"]
    assert gateway.check().ok
