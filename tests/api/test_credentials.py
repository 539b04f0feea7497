"""A key is not the account, and the credit_id is a password (issue 11, item 3).

A key reads its own usage and the account's balance, never the credit_id; managing keys needs
the credit_id; the credit_id can be rotated (the old one refused at once, on every replica); a
copy of the database cannot act as any account; the operator grants by the public account id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from sqlalchemy import Connection, MetaData, select

from farebox.cli import main as cli
from farebox.sim.server import SimServer

from support import ADMIN_TOKEN, NANOS, Gateway, new_account, running_gateway
from support import test_catalog as catalog_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(key: str) -> dict[str, bytes]:
    return {"Authorization": f"Bearer {key}".encode()}


def credit(credit_id: str) -> dict[str, bytes]:
    return {"x-credit-id": credit_id.encode()}  # bytes: any value, even a non-ASCII one


def strings_in(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def chat(c: httpx.Client, key: str) -> httpx.Response:
    return c.post(
        "/v1/chat/completions",
        json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
        headers=bearer(key),
    )


def make_key(c: httpx.Client, credit_id: str, **body: Any) -> dict[str, Any]:
    r = c.post("/keys", json=body, headers=credit(credit_id))
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


def test_a_limited_key_cannot_learn_the_credit_id_nor_manage_any_key(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, owner_key = new_account(c, 5)
    owner_id = c.get("/keys", headers=credit(credit_id)).json()["data"][0]["_id"]
    limited = make_key(c, credit_id, name="delegated", usage_limit_usd=0.05)
    assert chat(c, limited["api_key"]).status_code == 200

    r = c.post("/credits/balance", headers=bearer(limited["api_key"]))
    assert r.status_code == 200, r.text
    seen = r.json()
    assert credit_id not in r.text
    assert seen["key"]["_id"] == limited["_id"] and seen["key"]["usage_limit_usd"] == 0.05
    assert seen["key"]["current_period_usage_usd"] > 0 and seen["balance"] > 4.9
    # Nothing the key was shown works as a credit_id.
    for value in set(strings_in(seen)):
        assert c.get("/keys", headers=credit(value)).status_code == 401, value

    # The key itself, however sent, manages nothing: not list, reveal, lift, nor revoke.
    for headers in (bearer(limited["api_key"]), credit(limited["api_key"])):
        assert c.get("/keys", headers=headers).status_code == 401
        assert c.get("/keys", params={"show_key": "true"}, headers=headers).status_code == 401
        assert c.get(f"/keys/{owner_id}", headers=headers).status_code == 401
        lift = c.patch(f"/keys/{limited['_id']}", json={"usage_limit_usd": None}, headers=headers)
        assert lift.status_code == 401
        assert c.delete(f"/keys/{owner_id}", headers=headers).status_code == 401
        assert c.post("/keys", json={"name": "mine"}, headers=headers).status_code == 401
        assert c.post("/credits/rotate", headers=headers).status_code == 401

    keys = {k["_id"]: k for k in c.get("/keys", headers=credit(credit_id)).json()["data"]}
    assert set(keys) == {owner_id, limited["_id"]}  # nothing revoked, nothing added
    assert keys[limited["_id"]]["usage_limit_usd"] == 0.05
    assert chat(c, owner_key).status_code == 200


def test_rotating_the_credit_id_refuses_the_old_one_at_once_on_every_replica(
    gateway: Gateway, c: httpx.Client, sim: SimServer
) -> None:
    old, key = new_account(c, 1)
    account_id = gateway.account_id(old)
    with (
        running_gateway(
            gateway.settings.database_url,
            catalog_for(sim.url),
            secret_key=gateway.settings.secret_key,
        ) as other,
        other.client() as c2,
    ):
        for client in (c, c2):  # both replicas know the old one (and may have it cached)
            assert client.get("/keys", headers=credit(old)).status_code == 200
            assert client.get("/queries/history", headers=credit(old)).status_code == 200
        r = c.post("/credits/rotate", headers=credit(old))
        assert r.status_code == 200, r.text
        new = r.json()["credit_id"]
        assert new != old and r.json()["account_id"] == account_id
        for client in (c, c2):  # at once, here and on the other replica
            assert client.get("/keys", headers=credit(old)).status_code == 401
            assert client.get("/queries/history", headers=credit(old)).status_code == 401
            assert client.get("/queries/history", params={"credit_id": old}).status_code == 401
            assert client.get("/nwc-auto-topup", headers=credit(old)).status_code == 401
            assert client.post("/credits/rotate", headers=credit(old)).status_code == 401
            gone = client.post("/credits/balance", json={"credit_id": old})
            assert gone.status_code == 404
            grant = client.post(
                "/admin/credits", json={"credit_id": old, "amount_usd": 1}, headers=ADMIN
            )
            assert grant.status_code == 404
            assert client.get("/keys", headers=credit(new)).status_code == 200
    balance = c.post("/credits/balance", json={"credit_id": new}).json()
    assert balance["account_id"] == account_id and balance["balance"] == 1
    assert chat(c, key).status_code == 200  # keys are not the credit_id: they keep working
    assert gateway.check().ok


def test_rotate_refuses_bad_credentials_and_changes_nothing(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, _ = new_account(c, 1)
    for headers in ({}, credit("nope"), credit("x" * 5000), credit(credit_id.upper())):
        r = c.post("/credits/rotate", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "authentication_error"
    assert c.get("/keys", headers=credit(credit_id)).status_code == 200
    assert gateway.nanos(credit_id) == (NANOS, 0)


def test_history_takes_the_credit_id_in_a_header(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, key = new_account(c, 1)
    assert chat(c, key).status_code == 200
    by_header = c.get("/queries/history", headers=credit(credit_id))
    assert by_header.status_code == 200, by_header.text
    assert by_header.json()["pagination"]["total"] == 1
    by_query = c.get("/queries/history", params={"credit_id": credit_id})  # PPQ's form
    assert by_query.json()["data"] == by_header.json()["data"]


def test_admin_grants_by_public_account_id(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    account_id = gateway.account_id(credit_id)
    assert account_id.startswith("acct_")
    r = c.post("/admin/credits", json={"account_id": account_id, "amount_usd": 2}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["account_id"] == account_id and r.json()["balance"] == 2
    assert credit_id not in r.text
    assert gateway.nanos(credit_id) == (2 * NANOS, 0)


def test_admin_grant_bad_account_names_are_4xx_and_change_nothing(
    gateway: Gateway, c: httpx.Client
) -> None:
    credit_id, _ = new_account(c, 1)
    account_id = gateway.account_id(credit_id)
    grants_before = gateway.nanos("grants")
    bad: list[tuple[dict[str, Any], int]] = [
        ({"account_id": account_id, "credit_id": credit_id}, 400),  # both
        ({}, 400),  # neither
        ({"account_id": 12}, 400),
        ({"account_id": ""}, 400),
        ({"account_id": ["acct_x"]}, 400),
        ({"account_id": "revenue"}, 404),  # system accounts are nobody's
        ({"account_id": "grants"}, 404),
        ({"account_id": "topups"}, 404),
        ({"account_id": "acct_" + "0" * 24}, 404),
        ({"account_id": credit_id}, 404),  # a credit_id is not an account id
        ({"credit_id": account_id}, 404),  # nor the other way round
        ({"account_id": "x" * 10_000}, 404),
        ({"account_id": "acct_\x00"}, 404),
    ]
    for body, status in bad:
        r = c.post("/admin/credits", json={**body, "amount_usd": 1}, headers=ADMIN)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()["error"]) >= {"message", "type", "param", "code"}
        assert credit_id not in r.text  # a credit_id is never echoed
    assert gateway.nanos(credit_id) == (NANOS, 0)
    assert gateway.nanos("grants") == grants_before


def test_cli_grants_by_public_account_id_or_credit_id(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    account_id = gateway.account_id(credit_id)
    env = gateway.cli_env()
    by_id = CliRunner().invoke(cli, ["admin", "grant", account_id, "1.5"], env=env)
    assert by_id.exit_code == 0, by_id.output
    assert f"to {account_id}" in by_id.output
    by_credit = CliRunner().invoke(cli, ["admin", "grant", credit_id, "0.5"], env=env)
    assert by_credit.exit_code == 0, by_credit.output
    assert credit_id not in by_credit.output and f"to {account_id}" in by_credit.output
    for unknown in ("revenue", "acct_" + "1" * 24, "nope"):
        refused = CliRunner().invoke(cli, ["admin", "grant", unknown, "1"], env=env)
        assert refused.exit_code != 0 and "no customer account" in refused.output
    assert gateway.nanos(credit_id) == (2 * NANOS, 0)


def database_strings(gw: Gateway) -> set[str]:
    """Every text value of every row of every table: what a copy of the database holds."""

    def read(conn: Connection) -> set[str]:
        tables = MetaData()
        tables.reflect(conn)
        return {
            v for t in tables.sorted_tables for row in conn.execute(select(t)) for v in row
            if isinstance(v, str)
        }  # fmt: skip

    return gw.services.db.read_sync(read)


def test_a_copy_of_the_database_cannot_act_as_any_account(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    """Every string a copy of the database holds is tried as a credit_id and as an API key:
    none opens anything, and none contains a credit_id, a key or the instance secret."""
    with running_gateway(db_url, catalog_for(sim.url)) as gw, gw.client() as c:
        secrets: list[str] = []
        for _ in range(2):
            credit_id, key = new_account(c, 1)
            assert chat(c, key).status_code == 200
            extra = make_key(c, credit_id, name="second", usage_limit_usd=1)["api_key"]
            rotated = c.post("/credits/rotate", headers=credit(credit_id)).json()["credit_id"]
            secrets += [credit_id, rotated, key, extra]
        instance = gw.settings.secret_key or (tmp_path / "farebox-secret.key").read_text().strip()
        values = database_strings(gw)
        assert len(values) > 20
        for secret in [*secrets, instance]:
            assert not [v for v in values if secret in v], "a secret is in the database"
        for value in values:
            assert c.post("/credits/balance", json={"credit_id": value}).status_code == 404
            carried = value.strip() == value != "" and not any(ch in value for ch in "\r\n\0")
            if not carried or len(value) > 4096:
                continue  # not something HTTP can carry in a header
            assert c.get("/keys", headers=credit(value)).status_code == 401, value
            assert c.post("/credits/balance", headers=bearer(value)).status_code == 401, value
