"""`farebox dev pay` asks the running gateway's dev wallet (POST /admin/dev/pay), from any folder;
the endpoint takes the admin token, answers only on loopback with no proxy, and exists only
where the dev wallet is on: it never gives free money on a real deployment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.requests import Request

from farebox.api.dev import _require_local
from farebox.cli import main as cli
from farebox.errors import Forbidden

from payments_support import assert_clean, bearer, create_topup, topup_status
from support import ADMIN_TOKEN, Gateway, free_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def open_topup(gw: Gateway, key: str, usd: str = "2") -> dict[str, str]:
    r = create_topup(gw, bearer(key), body={"amount": usd, "currency": "USD"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_dev_pay_from_another_folder_credits_and_leaves_nothing_there(
    dev_gateway: Gateway, tmp_path: Path
) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = open_topup(dev_gateway, key)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"FAREBOX_ADMIN_TOKEN": ADMIN_TOKEN}
    old = Path.cwd()
    os.chdir(elsewhere)
    try:
        result = CliRunner().invoke(
            cli, ["dev", "pay", "--url", dev_gateway.url, inv["bolt11"]], env=env
        )
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("paid; preimage ")
    account_id = dev_gateway.account_id(credit_id)
    assert f"top-up {inv['invoice_id']}: credited $2 to {account_id}" in result.output
    assert list(elsewhere.iterdir()) == []  # no stray farebox.db where it was run
    assert dev_gateway.nanos(credit_id) == (2_000_000_000, 0)
    assert topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()["status"] == "paid"
    assert_clean(dev_gateway)


def test_dev_pay_says_exactly_what_it_needs(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = open_topup(dev_gateway, key)
    runner = CliRunner()
    no_token = runner.invoke(cli, ["dev", "pay", "--url", dev_gateway.url, inv["bolt11"]], env={})
    assert no_token.exit_code == 1
    assert "needs its admin token" in no_token.output and "FAREBOX_ADMIN_TOKEN" in no_token.output
    nobody = f"http://127.0.0.1:{free_port()}"
    gone = runner.invoke(
        cli, ["dev", "pay", "--url", nobody, "--admin-token", "x", inv["bolt11"]], env={}
    )
    assert gone.exit_code == 1 and f"no farebox answers at {nobody}" in gone.output
    wrong = runner.invoke(
        cli, ["dev", "pay", "--url", dev_gateway.url, "--admin-token", "nope", inv["bolt11"]]
    )
    assert wrong.exit_code == 1 and "Invalid admin token" in wrong.output
    not_http = runner.invoke(
        cli, ["dev", "pay", "--url", "file:///etc/passwd", "--admin-token", "x", inv["bolt11"]]
    )
    assert not_http.exit_code == 1 and "http://" in not_http.output
    assert dev_gateway.nanos(credit_id) == (0, 0)
    assert topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()["status"] == "pending"


def test_the_endpoint_takes_the_admin_token_and_refuses_relayed_requests(
    dev_gateway: Gateway,
) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = open_topup(dev_gateway, key)
    body = {"bolt11": inv["bolt11"]}
    with dev_gateway.client() as c:
        assert c.post("/admin/dev/pay", json=body).status_code == 401
        bad = c.post("/admin/dev/pay", json=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            relayed = c.post("/admin/dev/pay", json=body, headers={**ADMIN, header: "10.1.2.3"})
            assert relayed.status_code == 403, header
            assert "only on this machine" in relayed.json()["error"]["message"]
        garbage = c.post("/admin/dev/pay", json={"bolt11": 5}, headers=ADMIN)
        assert garbage.status_code == 400 and garbage.json()["error"]["param"] == "bolt11"
        assert dev_gateway.nanos(credit_id) == (0, 0)
        paid = c.post("/admin/dev/pay", json=body, headers=ADMIN)
    assert paid.status_code == 200, paid.text
    assert paid.json()["topup"]["credited"] is True
    assert dev_gateway.nanos(credit_id) == (2_000_000_000, 0)
    assert_clean(dev_gateway)


@pytest.mark.parametrize("peer", ["203.0.113.7", "10.0.0.5", "::ffff:192.0.2.1", "unknown"])
def test_a_peer_off_this_machine_is_refused(dev_gateway: Gateway, peer: str) -> None:
    scope = {"type": "http", "headers": [], "client": (peer, 40000)}
    with pytest.raises(Forbidden):
        _require_local(Request(scope), dev_gateway.services)
    loopback = {"type": "http", "headers": [], "client": ("127.0.0.1", 40000)}
    _require_local(Request(loopback), dev_gateway.services)  # no error


def test_without_the_dev_wallet_there_is_nothing_to_pay_with(gateway: Gateway) -> None:
    """A real deployment (no --demo, no FAREBOX_DEV_WALLET): 404 that says why."""
    with gateway.client() as c:
        r = c.post("/admin/dev/pay", json={"bolt11": "lnbcrt1x"}, headers=ADMIN)
    assert r.status_code == 404
    assert "no dev wallet" in r.json()["error"]["message"]
