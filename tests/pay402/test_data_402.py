"""Pay per request on the data endpoints (`/v1/data/...`), as on PPQ: a keyless call gets its
400 first if it has one, else a 402 for the endpoint's fixed price; the paid credential buys the
call once; a failed upstream call charges nothing and leaves the money on the credential."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from farebox.money import NANOS_PER_USD
from farebox.sim.server import SimServer

import support
from data_support import call, data_test_catalog, endpoint, upstream_requests
from pay402_support import (
    PAY_ENV,
    challenges,
    credential_nanos,
    history,
    invoices_issued,
    pay_l402,
    payment_credential,
    payment_hash,
)
from support import Gateway, database_url, require_db, running_gateway

PEOPLE = ("apollo/people-search", {"q_keywords": "software engineer", "per_page": 5})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def data_pay_gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("data402")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(
            url,
            support.test_catalog(sim.url),
            data_catalog=data_test_catalog(sim.url),
            extra_env=PAY_ENV,
        ) as gw,
    ):
        yield gw
        report = gw.check()
        assert report.ok, report.problems


def _sats(price_nanos: int) -> int:
    """The dev wallet's rate is $100,000 a BTC: 1 sat = $0.001, rounded up to whole sats."""
    per_sat = NANOS_PER_USD // 1000
    return -(-price_nanos // per_sat)


def test_keyless_data_call_gets_a_challenge_for_its_fixed_price(
    data_pay_gw: Gateway, sim: Any
) -> None:
    before = upstream_requests(sim)
    r = call(data_pay_gw, None, *PEOPLE)
    assert r.status_code == 402, r.text
    assert set(challenges(r)) == {"L402", "Payment"}
    price = endpoint(data_pay_gw, PEOPLE[0]).price
    assert r.json()["price_sats"] == _sats(price)
    assert "POST /v1/data/api/apollo/people-search" in r.json()["error"]["message"]
    assert upstream_requests(sim) == before  # nobody was called before payment


def test_paid_data_call_is_served_once_and_recorded_under_its_scheme(
    data_pay_gw: Gateway,
) -> None:
    first = call(data_pay_gw, None, *PEOPLE)
    auth = pay_l402(data_pay_gw, first)
    with data_pay_gw.client() as c:
        paid = c.post(
            endpoint(data_pay_gw, PEOPLE[0]).public_path,
            json=PEOPLE[1],
            headers={"Authorization": auth},
        )
    assert paid.status_code == 200, paid.text
    assert "people" in paid.json()  # Apollo's shape, from the simulator
    price = endpoint(data_pay_gw, PEOPLE[0]).price
    ph = payment_hash(first)
    assert history(data_pay_gw, ph) == [("l402", "data", PEOPLE[0], price)]
    assert credential_nanos(data_pay_gw, ph) == (0, 0)  # credited the price, charged the price
    with data_pay_gw.client() as c:
        again = c.post(
            endpoint(data_pay_gw, PEOPLE[0]).public_path,
            json=PEOPLE[1],
            headers={"Authorization": auth},
        )
    assert again.status_code == 402, again.text  # one payment buys one call


def test_keyless_bad_data_call_gets_its_400_and_no_invoice(data_pay_gw: Gateway) -> None:
    before = invoices_issued(data_pay_gw)
    r = call(data_pay_gw, None, "apollo/people-search", {"per_page": 1000})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "per_page"
    assert invoices_issued(data_pay_gw) == before


def test_unconfigured_endpoint_is_501_before_any_invoice(data_pay_gw: Gateway) -> None:
    before = invoices_issued(data_pay_gw)
    r = call(data_pay_gw, None, "test/exa-unset", {"query": "q"})
    assert r.status_code == 501, r.text
    assert invoices_issued(data_pay_gw) == before


def test_failed_upstream_after_payment_charges_nothing_and_keeps_the_credential(
    data_pay_gw: Gateway,
) -> None:
    broken = "test/exa-500"
    first = call(data_pay_gw, None, broken, {"query": "q"})
    assert first.status_code == 402, first.text
    params = challenges(first)["Payment"]
    auth = pay_l402(data_pay_gw, first)
    preimage = auth.rsplit(":", 1)[1]
    ph = payment_hash(first)
    credited = endpoint(data_pay_gw, broken).price  # the price (the sats round it up)
    for credential in (auth, payment_credential(params, preimage)):  # both schemes, one payment
        with data_pay_gw.client() as c:
            r = c.post(
                endpoint(data_pay_gw, broken).public_path,
                json={"query": "q"},
                headers={"Authorization": credential},
            )
        assert r.status_code == 502, r.text
        assert credential_nanos(data_pay_gw, ph) == (credited, 0)
    assert history(data_pay_gw, ph) == []
