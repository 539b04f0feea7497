"""Figures read from the shared database at scrape time: open holds and what they reserve.

Every replica and worker reads the same database, so each exports the same value: these
families are named `farebox_db_*` and must be aggregated with max() (or read from one replica),
never sum()med. They are never written to the per-process multiprocess files.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from farebox.db import schema
from farebox.money import NANOS_PER_USD

PER_DATABASE = "Per database: the same on every replica, aggregate with max(), never sum()."


@dataclass(frozen=True, slots=True)
class DbFigures:
    open_holds: int
    reserved_nanos: int
    expired_holds: int  # past their expiry and not yet swept (the sweeper is behind, or stopped)


def read_figures(conn: Connection, now: float) -> DbFigures:
    holds = schema.holds.c
    count, total = conn.execute(
        select(func.count(), func.coalesce(func.sum(holds.amount), 0)).select_from(schema.holds)
    ).one()
    expired = conn.execute(
        select(func.count()).select_from(schema.holds).where(holds.expires_at < now)
    ).scalar_one()
    return DbFigures(int(count), int(total), int(expired))


class _Figures(Collector):
    def __init__(self, figures: DbFigures | None) -> None:
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        f = self.figures
        yield GaugeMetricFamily(
            "farebox_db_up",
            f"1 if the database answered this scrape. {PER_DATABASE}",
            value=1 if f else 0,
        )
        if f is None:
            return
        yield GaugeMetricFamily(
            "farebox_db_open_holds",
            f"Holds not yet settled or swept. {PER_DATABASE}",
            value=f.open_holds,
        )
        yield GaugeMetricFamily(
            "farebox_db_reserved_usd",
            f"USD reserved by open holds (requests in flight). {PER_DATABASE}",
            value=f.reserved_nanos / NANOS_PER_USD,
        )
        yield GaugeMetricFamily(
            "farebox_db_expired_holds",
            f"Holds past their expiry the sweeper has not resolved yet. {PER_DATABASE}",
            value=f.expired_holds,
        )


def exposition(figures: DbFigures | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(figures))
    return generate_latest(registry)


def now() -> float:
    return time.time()
