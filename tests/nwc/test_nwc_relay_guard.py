"""A wallet's relays go through the SSRF guard: a relay on the operator's own network is refused
with a clear 400 when the wallet connects, and at auto top-up time before any invoice is opened.

This gateway allows no private host (the other NWC tests allow the test relay's loopback
address through FAREBOX_FETCH_ALLOW_HOSTS, and show a public relay working end to end)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from farebox.nwc import store
from farebox.payments import invoices
from farebox.sim.server import SimServer

from support import Gateway, LoopThread, database_url, require_db, running_gateway
from support import test_catalog as sim_catalog

STRICT_ENV = {
    "FAREBOX_DEV_WALLET": "1",
    "FAREBOX_TOPUP_RATES": "BTC=100000",
    "FAREBOX_NWC_DEBOUNCE_S": "0.05",
    "FAREBOX_NWC_TIMEOUT_S": "2",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def strict_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("nwc-strict")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, sim_catalog(sim.url), extra_env=STRICT_ENV) as gw,
    ):
        yield gw


# This module needs neither the wallet service nor its gateway: these override conftest's.
@pytest.fixture(autouse=True)
def wallet_pays() -> None:
    return None


@pytest.fixture(autouse=True)
def ledger_clean_after_each_test(strict_gateway: Gateway) -> Iterator[None]:
    yield
    report = strict_gateway.check()
    assert report.ok, report.problems


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP listener on 127.0.0.1 standing in for a relay: counts the connections it gets."""
    accepted: list[int] = []
    loop = LoopThread()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = loop.run(asyncio.start_server(serve, "127.0.0.1", 0))
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port, accepted
    finally:
        server.close()
        loop.run(server.wait_closed())
        loop.stop()


def relay_forms(port: int) -> list[str]:
    forms = [
        f"ws://127.0.0.1:{port}",
        f"ws://127.9.9.9:{port}",
        "ws://169.254.169.254/latest/meta-data",
        f"ws://[::1]:{port}",
        f"ws://[::127.0.0.1]:{port}",
        f"ws://[::ffff:127.0.0.1]:{port}",
        f"ws://[::ffff:0:7f00:1]:{port}",
        f"wss://[2002:7f00:1::]:{port}",
        f"ws://localhost:{port}",  # a host name resolving to loopback
        f"ws://{'r' * 300}.example:{port}",
    ]
    return forms


def uri_for(relay: str) -> str:
    return f"nostr+walletconnect://{'ab' * 32}?relay={relay}&secret={'cd' * 32}"


def connect(gw: Gateway, credit_id: str, relay: str) -> httpx.Response:
    with gw.client() as c:
        return c.post(
            "/nwc-auto-topup/connect",
            json={"nwc_url": uri_for(relay), "threshold_usd": 10},
            headers={"x-credit-id": credit_id},
        )


def nwc_invoices(gw: Gateway, credit_id: str) -> list[invoices.TopupInvoice]:
    rows = gw.loop.run(
        gw.services.db.read(
            lambda c: invoices.list_invoices(c, account_id=gw.account_id(credit_id))
        )
    )
    return [r for r in rows if r.source == "nwc"]


def test_private_relays_are_refused_at_connect_and_nothing_is_contacted(
    strict_gateway: Gateway, listener: tuple[int, list[int]]
) -> None:
    port, accepted = listener
    credit_id, _key = strict_gateway.create_account()  # $0: under any threshold
    for relay in relay_forms(port):
        r = connect(strict_gateway, credit_id, relay)
        assert r.status_code == 400, (relay, r.text)
        error = r.json()["error"]
        assert error["param"] == "nwc_url" and error["code"] == "url_refused", (relay, error)
        assert len(error["message"]) < 500
    time.sleep(0.3)  # what an accepted connection would have scheduled (debounce 0.05 s)
    with strict_gateway.client() as c:
        state = c.get("/nwc-auto-topup", headers={"x-credit-id": credit_id}).json()
    assert state == {"status": "success", "connected": False}
    assert nwc_invoices(strict_gateway, credit_id) == []
    assert accepted == []
    assert strict_gateway.nanos(credit_id) == (0, 0)


def test_a_stored_private_relay_is_refused_at_top_up_time_before_any_invoice(
    strict_gateway: Gateway, listener: tuple[int, list[int]]
) -> None:
    """A connection saved before relays were vetted (or whose host now resolves elsewhere)."""
    port, accepted = listener
    services = strict_gateway.services
    for relay in (f"ws://127.0.0.1:{port}", f"ws://[::127.0.0.1]:{port}", f"ws://localhost:{port}"):
        credit_id, _key = strict_gateway.create_account()
        account_id = strict_gateway.account_id(credit_id)
        strict_gateway.loop.run(
            services.db.write(
                store.save_connection,
                account_id,
                "ab" * 32,
                (relay,),
                services.nwc.cipher.encrypt(uri_for(relay)),
                10_000_000_000,
                10_000_000_000,
            )
        )
        attempt = strict_gateway.loop.run(services.nwc.check(account_id))
        assert attempt is not None and attempt.outcome == "failed"
        assert attempt.invoice_id is None
        assert attempt.error is not None and attempt.error.startswith("relay refused:"), attempt
        assert "non-public address" in attempt.error or "loopback" in attempt.error
        assert nwc_invoices(strict_gateway, credit_id) == []
        with strict_gateway.client() as c:
            state = c.get("/nwc-auto-topup", headers={"x-credit-id": credit_id}).json()
        assert state["failures"] == 1 and state["last_error"] == attempt.error
    assert accepted == []


def test_the_listener_counts_connections(listener: tuple[int, list[int]]) -> None:
    """The check above can fail: a direct connection to the listener is counted."""
    port, accepted = listener
    before = len(accepted)
    with socket.create_connection(("127.0.0.1", port)):
        pass
    deadline = time.time() + 5
    while len(accepted) == before and time.time() < deadline:
        time.sleep(0.02)
    assert len(accepted) == before + 1
    accepted.pop()
