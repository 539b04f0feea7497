"""Dashboard sessions expire as stated (idle, absolute, kind, admin token) and the usage and
revenue reports sum the history by UTC day, model and provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, insert, select

from farebox.app import prepare_database
from farebox.catalog.model import Catalog, TokenPrices
from farebox.dashboard.sessions import CUSTOMER, OPERATOR, SessionStore
from farebox.db.database import Database
from farebox.db.schema import dashboard_sessions, queries
from farebox.history.revenue import revenue_report
from farebox.history.usage import DailyUsage, daily_usage, day_range
from farebox.settings import Settings

from support import test_catalog as sim_catalog

DAY = 86_400


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = prepare_database(Settings(database_url=db_url))
    try:
        yield database
    finally:
        database.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_ends_when_idle_and_at_its_absolute_limit(db: Database) -> None:
    clock = Clock()
    store = SessionStore(db, idle_s=100, max_s=1000, clock=clock)
    token, _ = await store.open(CUSTOMER, "acct_1")
    clock.now += 90
    assert await store.load(token, CUSTOMER) is not None  # activity: idle time starts again
    clock.now += 90
    assert await store.load(token, CUSTOMER, activity=False) is not None
    clock.now += 20  # 110 s since the last activity; the poll above did not count
    assert await store.load(token, CUSTOMER, activity=False) is None
    assert await store.load(token, CUSTOMER) is None  # and it is gone for good

    token, _ = await store.open(CUSTOMER, "acct_1")
    for _ in range(11):
        clock.now += 90
        assert await store.load(token, CUSTOMER) is not None  # 990 s of steady use
    clock.now += 90
    assert await store.load(token, CUSTOMER) is None  # past 1000 s since sign-in


async def test_a_session_is_only_good_for_its_own_kind_and_admin_token(db: Database) -> None:
    store = SessionStore(db, idle_s=100, max_s=1000)
    customer, _ = await store.open(CUSTOMER, "acct_1")
    operator, _ = await store.open(OPERATOR, admin_token="old-token")
    assert await store.load(customer, OPERATOR, admin_token="old-token") is None
    assert await store.load(operator, CUSTOMER) is None
    assert await store.load(operator, OPERATOR, admin_token="old-token") is not None
    assert await store.load(operator, OPERATOR, admin_token="new-token") is None
    assert await store.load("x" * 500, CUSTOMER) is None
    await store.close(customer)
    assert await store.load(customer, CUSTOMER) is None


async def test_signing_in_clears_expired_sessions(db: Database) -> None:
    clock = Clock()
    store = SessionStore(db, idle_s=100, max_s=1000, clock=clock)
    for _ in range(3):
        await store.open(CUSTOMER, "acct_1")
    clock.now += 200
    await store.open(CUSTOMER, "acct_2")
    count = db.read_sync(
        lambda c: c.execute(select(func.count()).select_from(dashboard_sessions)).scalar_one()
    )
    assert count == 1


def _query(
    n: int, account: str, model: str, at: float, price: int, tokens: int
) -> dict[str, object]:
    return {
        "request_id": f"r{n}",
        "account_id": account,
        "key_id": None,
        "created_at": at,
        "model": model,
        "input_count": tokens,
        "output_count": tokens * 2,
        "price": price,
        "query_type": "chat",
        "query_source": "api",
        "is_online": False,
        "is_free_model": False,
    }


def test_usage_is_summed_per_utc_day_and_model(db: Database) -> None:
    day = 20_000 * DAY  # 2024-10-04 00:00 UTC
    rows = [
        _query(1, "acct_a", "m1", day - 1, 100, 10),  # the last second of the day before
        _query(2, "acct_a", "m1", day, 200, 20),
        _query(3, "acct_a", "m1", day + DAY - 0.5, 300, 30),
        _query(4, "acct_a", "m2", day + 5, 400, 40),
        _query(5, "acct_b", "m1", day + 6, 800, 80),
    ]
    db.write_sync(lambda c: c.execute(insert(queries), rows))
    mine = db.read_sync(daily_usage, day - DAY, day + DAY, "acct_a")
    assert mine == [
        DailyUsage(date(2024, 10, 3), "m1", 1, 10, 20, 100),
        DailyUsage(date(2024, 10, 4), "m1", 2, 50, 100, 500),
        DailyUsage(date(2024, 10, 4), "m2", 1, 40, 80, 400),
    ]
    everyone = db.read_sync(daily_usage, day, day + DAY, None)
    assert [(r.model, r.requests, r.spent) for r in everyone] == [("m1", 3, 1300), ("m2", 1, 400)]
    assert day_range(1, day + 10) == (float(day), float(day + DAY))


def test_the_revenue_report_splits_revenue_into_upstream_cost_and_margin() -> None:
    base = sim_catalog("http://127.0.0.1:1")
    known = dataclasses.replace(
        base.models["test-model"], provider="Acme", cost=TokenPrices(input=500_000_000, output=1)
    )
    unknown = dataclasses.replace(base.models["pricey-model"], provider="Other", cost=None)
    catalog = Catalog(models={"known": known, "unknown": unknown}, providers=base.providers)
    d1, d2, d3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
    rows = [
        # 2M input tokens at $0.50/M = $1 of cost; 1M output at 1 nanodollar/M = 1 nano
        DailyUsage(d1, "known", 3, 2_000_000, 1_000_000, 3 * 10**9),
        DailyUsage(d2, "unknown", 1, 10, 10, 7 * 10**9),
        DailyUsage(d2, "gone-model", 1, 10, 10, 5),
    ]
    report = revenue_report(catalog, rows, [d1, d2, d3])
    assert [line.name for line in report.by_day] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    first = report.by_day[0]
    assert (first.revenue, first.cost, first.margin) == (3 * 10**9, 10**9 + 1, 2 * 10**9 - 1)
    assert report.by_day[2].requests == 0
    assert report.total.revenue == 10 * 10**9 + 5
    assert report.total.revenue_without_cost == 7 * 10**9 + 5
    assert report.total.margin == 2 * 10**9 - 1
    assert [line.name for line in report.by_model] == ["unknown", "known", "gone-model"]
    providers = {line.name: line.revenue for line in report.by_provider}
    assert providers == {"Acme": 3 * 10**9, "Other": 7 * 10**9, "(not in the catalog)": 5}
