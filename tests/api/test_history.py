"""GET /queries/history: PPQ's fields, auth options, filters and pagination; no prompt text kept."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from farebox.db.schema import metadata

from support import NANOS, Gateway, new_account

ROW_FIELDS = {
    "timestamp",
    "model",
    "input_count",
    "output_count",
    "price_in_usd",
    "query_type",
    "query_source",
    "api_key_id",
    "isOnline",
    "isFreeModel",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(c: httpx.Client, key: str, model: str, text: str = "hi", **extra: Any) -> httpx.Response:
    return c.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
        headers=bearer(key),
    )


def history(
    c: httpx.Client, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    r = c.get("/queries/history", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return dict(body)


def assert_error(r: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and len(err["message"]) > 15
    if param is not None:
        assert err["param"] == param
    return dict(err)


@dataclass
class Activity:
    credit_id: str
    key: str  # the account's first key: 3 test-model queries and a failed one
    key_id: str
    second: str  # a second key: 1 fallback-model query and 1 streamed test-model query
    second_id: str
    spent: int


@pytest.fixture(scope="module")
def activity(gateway: Gateway, c: httpx.Client) -> Activity:
    credit_id, key = new_account(c, 1)
    before, _ = gateway.nanos(credit_id)
    key_id = c.get("/keys", headers={"x-credit-id": credit_id}).json()["data"][0]["_id"]
    made = c.post("/keys", json={"name": "second"}, headers={"x-credit-id": credit_id})
    second, second_id = made.json()["data"]["api_key"], made.json()["data"]["_id"]
    for _ in range(3):
        assert chat(c, key, "test-model").status_code == 200
    assert chat(c, key, "failing-model").status_code >= 500  # not charged, not recorded
    assert chat(c, second, "fallback-model").status_code == 200
    r = chat(c, second, "test-model", stream=True, max_tokens=5)
    assert r.status_code == 200 and r.text.rstrip().endswith("[DONE]")
    after, reserved = gateway.nanos(credit_id)
    assert reserved == 0
    return Activity(credit_id, key, key_id, second, second_id, before - after)


def test_rows_have_ppq_fields_and_add_up_to_the_money_spent(
    gateway: Gateway, c: httpx.Client, activity: Activity
) -> None:
    body = history(c, {}, credit_id=activity.credit_id)
    rows = body["data"]
    assert len(rows) == 5
    assert body["pagination"] == {"page": 1, "page_count": 20, "total": 5, "total_pages": 1}
    for row in rows:
        assert set(row) == ROW_FIELDS
        assert row["query_type"] == "chat"
        assert row["query_source"] == "api"
        assert row["isOnline"] is False and row["isFreeModel"] is False
        assert row["input_count"] > 0 and row["output_count"] > 0
        assert row["price_in_usd"] > 0
        # $1/1M in, $2/1M out
        assert (
            round(row["price_in_usd"] * NANOS)
            == row["input_count"] * 1_000 + row["output_count"] * 2_000
        )
        when = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - when).total_seconds()) < 120
    assert sum(round(r["price_in_usd"] * NANOS) for r in rows) == activity.spent
    assert sorted(r["model"] for r in rows) == ["fallback-model", *["test-model"] * 4]
    assert {r["api_key_id"] for r in rows} == {activity.key_id, activity.second_id}
    stamps = [r["timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert next(r["output_count"] for r in rows if r["api_key_id"] == activity.second_id) == 5


def test_api_key_auth_is_scoped_to_that_key_unless_all_keys(
    gateway: Gateway, c: httpx.Client, activity: Activity
) -> None:
    mine = history(c, bearer(activity.key))["data"]
    assert len(mine) == 3
    assert {r["api_key_id"] for r in mine} == {activity.key_id}
    via_header = history(c, {"api-key": activity.key})["data"]
    assert via_header == mine
    second = history(c, bearer(activity.second))["data"]
    assert len(second) == 2 and {r["api_key_id"] for r in second} == {activity.second_id}
    everything = history(c, bearer(activity.second), all_keys="true")["data"]
    assert len(everything) == 5
    assert history(c, bearer(activity.key), all_keys="false")["data"] == mine
    assert_error(
        c.get("/queries/history", params={"all_keys": "maybe"}, headers=bearer(activity.key)),
        400,
        "all_keys",
    )
    # api_key filters only with credit_id auth
    r = c.get("/queries/history", params={"api_key": activity.second}, headers=bearer(activity.key))
    assert_error(r, 400, "api_key")


def test_credit_id_auth_and_api_key_filter(
    gateway: Gateway, c: httpx.Client, activity: Activity
) -> None:
    assert len(history(c, credit_id=activity.credit_id)["data"]) == 5
    filtered = history(c, credit_id=activity.credit_id, api_key=activity.second)["data"]
    assert len(filtered) == 2 and {r["api_key_id"] for r in filtered} == {activity.second_id}
    r = c.get("/queries/history", params={"credit_id": activity.credit_id, "all_keys": "true"})
    assert_error(r, 400, "all_keys")
    # Another account's key is not a filter this account may use, and reveals nothing.
    _, stranger_key = new_account(c, 0)
    r = c.get("/queries/history", params={"credit_id": activity.credit_id, "api_key": stranger_key})
    assert_error(r, 404, "api_key")
    assert "data" not in r.json()
    r = c.get("/queries/history", params={"credit_id": activity.credit_id, "api_key": "sk-nope"})
    assert_error(r, 404, "api_key")


def test_history_of_a_revoked_key_stays_readable_by_the_account(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, _ = new_account(c, 1)
    made = c.post("/keys", json={"name": "old"}, headers={"x-credit-id": credit_id}).json()
    raw, key_id = made["data"]["api_key"], made["data"]["_id"]
    assert chat(c, raw, "test-model").status_code == 200
    c.delete(f"/keys/{key_id}", headers={"x-credit-id": credit_id})
    # The key itself can no longer authenticate...
    assert_error(c.get("/queries/history", headers=bearer(raw)), 401)
    # ...but the account can still see what it spent.
    rows = history(c, credit_id=credit_id, api_key=raw)["data"]
    assert len(rows) == 1 and rows[0]["api_key_id"] == key_id


def test_filters(gateway: Gateway, c: httpx.Client, activity: Activity) -> None:
    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    tomorrow = (today + timedelta(days=1)).isoformat()
    cid = activity.credit_id

    def total(**params: Any) -> int:
        return int(history(c, credit_id=cid, **params)["pagination"]["total"])

    assert total(model="fallback-model") == 1
    assert total(model="test-model") == 4
    assert total(model="failing-model") == 0
    assert total(model="no-such-model") == 0
    assert total(query_type="chat") == 5
    assert total(query_type="embedding") == 0
    assert total(query_source="api") == 5
    assert total(query_source="dashboard") == 0
    assert total(start_date=today.isoformat()) == 5
    assert total(start_date=tomorrow) == 0
    assert total(end_date=yesterday) == 0
    # A bare end date includes that whole day.
    assert total(end_date=today.isoformat()) == 5
    assert total(start_date=yesterday, end_date=today.isoformat()) == 5
    assert total(start_date=f"{today.isoformat()}T00:00:00Z") == 5
    assert total(end_date=f"{today.isoformat()}T00:00:00Z") == 0
    assert total(model="test-model", start_date=tomorrow) == 0
    rows = history(c, bearer(activity.second), model="test-model")["data"]
    assert len(rows) == 1 and rows[0]["output_count"] == 5
    for name in ("start_date", "end_date"):
        r = c.get("/queries/history", params={"credit_id": cid, name: "last tuesday"})
        err = assert_error(r, 400, name)
        assert "ISO 8601" in err["message"]


def test_pagination(gateway: Gateway, c: httpx.Client, activity: Activity) -> None:
    cid = activity.credit_id
    all_rows = history(c, credit_id=cid, page_count=100)["data"]
    assert len(all_rows) == 5
    first = history(c, credit_id=cid, page_count=2)
    assert first["pagination"] == {"page": 1, "page_count": 2, "total": 5, "total_pages": 3}
    pages = [history(c, credit_id=cid, page_count=2, page=p)["data"] for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert [r for p in pages for r in p] == all_rows
    for bad in ("101", "0", "-1", "abc", "2.5"):
        r = c.get("/queries/history", params={"credit_id": cid, "page_count": bad})
        assert_error(r, 400, "page_count")
    for bad in ("0", "-3", "x"):
        r = c.get("/queries/history", params={"credit_id": cid, "page": bad})
        assert_error(r, 400, "page")


def test_authentication_is_required(gateway: Gateway, c: httpx.Client, activity: Activity) -> None:
    assert_error(c.get("/queries/history"), 401)
    assert_error(c.get("/queries/history", headers=bearer("sk-wrong")), 401)
    assert_error(c.get("/queries/history", params={"credit_id": str(uuid.uuid4())}), 401)
    assert_error(c.get("/queries/history", params={"credit_id": "revenue"}), 401)
    assert_error(c.post("/queries/history", params={"credit_id": activity.credit_id}), 405)


def test_no_prompt_or_completion_text_is_stored(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, key = new_account(c, 1)
    secret = "zebra-" + uuid.uuid4().hex
    r = chat(c, key, "test-model", text=f"My password is {secret}, please repeat it")
    assert r.status_code == 200
    answer = r.json()["choices"][0]["message"]["content"]
    r = chat(c, key, "test-model", text=f"Again: {secret}", stream=True)
    assert r.status_code == 200
    gateway.nanos(credit_id)  # flush settlements and history rows

    def dump(conn: Any) -> list[str]:
        values: list[str] = []
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).fetchall():
                values.extend(str(v) for v in row if v is not None)
        return values

    values = gateway.services.db.read_sync(dump)
    assert not [v for v in values if secret in v]
    assert len(answer) > 20
    assert not [v for v in values if answer in v]


def test_other_accounts_see_nothing(gateway: Gateway, c: httpx.Client, activity: Activity) -> None:
    credit_id, key = new_account(c, 0)
    assert history(c, bearer(key), all_keys="true")["data"] == []
    assert history(c, credit_id=credit_id)["pagination"]["total"] == 0


def test_free_model_rows_cost_nothing(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, key = new_account(c, 0)
    r = chat(c, key, "free-model")
    assert r.status_code == 200, r.text
    rows = history(c, bearer(key))["data"]
    assert len(rows) == 1
    assert rows[0]["isFreeModel"] is True and rows[0]["price_in_usd"] == 0
    assert rows[0]["model"] == "free-model"
    assert gateway.nanos(credit_id) == (0, 0)


def test_free_model_answers_are_not_cut_short(gateway: Gateway, c: httpx.Client) -> None:
    _, key = new_account(c, 0)
    paid_key = new_account(c, 1)[1]
    reference = chat(c, paid_key, "test-model").json()["usage"]["completion_tokens"]
    assert reference > 1
    r = chat(c, key, "free-model")
    assert r.json()["usage"]["completion_tokens"] == reference
    r = chat(c, key, "free-model", stream=True, stream_options={"include_usage": True})
    assert '"content"' in r.text
    rows = history(c, bearer(key))["data"]
    assert [row["output_count"] for row in rows] == [reference, reference]
