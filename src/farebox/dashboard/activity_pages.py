"""Activity: the query history with PPQ's filters and paging, spend per day by model as a
chart, and a CSV export. The rows and sums come from history/ (store.py, usage.py)."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.wire.payments import ActivityQuery
from farebox.api.wire.validate import validate
from farebox.dashboard.account_pages import key_names
from farebox.dashboard.charts import stacked_bars, top_series
from farebox.dashboard.sessions import CUSTOMER, Session
from farebox.dashboard.web import NO_STORE, SECURITY_HEADERS, Web
from farebox.errors import InvalidRequest
from farebox.history.store import HistoryFilter
from farebox.history.usage import MAX_REPORT_DAYS, SECONDS_PER_DAY, DailyUsage, daily_usage
from farebox.isotime import iso_utc as iso
from farebox.money import format_usd

FILTERS = ("start_date", "end_date", "model", "query_type", "query_source", "api_key_id")
QUERY_TYPES = ("chat", "embedding", "transcription", "speech", "image", "video", "data")
QUERY_SOURCES = ("api", "dashboard", "l402", "payment")
CHART_DAYS = 30
CSV_LIMIT = 10_000
CSV_COLUMNS = (
    "timestamp",
    "model",
    "query_type",
    "query_source",
    "api_key_id",
    "api_key_name",
    "input_count",
    "output_count",
    "price_usd",
)


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula is quoted with '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def spend_chart(usage: list[DailyUsage], days: list[date]) -> Any:
    totals: dict[str, int] = defaultdict(int)
    for row in usage:
        totals[row.model] += row.spent
    group = top_series(totals)
    names = list(dict.fromkeys(group.values()))
    index = {d: i for i, d in enumerate(days)}
    series = {name: [0] * len(days) for name in names}
    for row in usage:
        if row.day in index:
            series[group[row.model]][index[row.day]] += row.spent
    return stacked_bars([d.isoformat() for d in days], series, names)


def routes(web: Web) -> list[Route]:
    services = web.services

    async def read_filter(
        request: Request, session: Session
    ) -> tuple[HistoryFilter, dict[str, str]]:
        assert session.account_id is not None
        q = {name: request.query_params.get(name, "")[:200] for name in FILTERS}
        query = validate(ActivityQuery, request.query_params)
        key_id = query.api_key_id
        if key_id is not None and key_id not in await key_names(web, session.account_id):
            raise InvalidRequest("That key is not one of this account's keys.", param="api_key_id")
        q["page_count"] = str(query.page_count)
        f = HistoryFilter(
            account_id=session.account_id,
            key_id=key_id,
            start=query.start_date,
            end=query.end_date,
            model=query.model,
            query_source=query.query_source,
            query_type=query.query_type,
            page=query.page,
            page_count=query.page_count,
        )
        return f, q

    async def rows_context(f: HistoryFilter, q: dict[str, str]) -> dict[str, Any]:
        await services.ledger.flush()
        result = await services.history.page(f)
        kept = {k: v for k, v in q.items() if v}

        def page_query(page: int) -> str:
            return urlencode({**kept, "page": page})

        return {
            "rows": result.rows,
            "total": result.total,
            "page": f.page,
            "pages": max(1, (result.total + f.page_count - 1) // f.page_count),
            "page_query": page_query,
            "key_names": await key_names(web, f.account_id),
            "query": urlencode({**kept, "page": f.page}),
        }

    @web.page(CUSTOMER)
    async def activity(request: Request) -> Response:
        session = await web.require(request, CUSTOMER)
        f, q = await read_filter(request, session)
        now = time.time()
        end = f.end if f.end is not None else now
        start = f.start if f.start is not None else end - (CHART_DAYS - 1) * SECONDS_PER_DAY
        first = datetime.fromtimestamp(start, UTC).date()
        last = datetime.fromtimestamp(end, UTC).date()
        if last < first:
            raise InvalidRequest("start_date must be before end_date", param="start_date")
        first = max(first, last - timedelta(days=MAX_REPORT_DAYS - 1))
        since = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
        usage = await services.db.read(
            daily_usage, since, since + ((last - first).days + 1) * SECONDS_PER_DAY, f.account_id
        )
        context = {
            **web.frame(session, "/dashboard/activity", "Activity"),
            **await rows_context(f, q),
            "q": q,
            "usage": usage,
            "chart": spend_chart(usage, days_between(first, last)),
            "chart_from": first.isoformat(),
            "chart_to": last.isoformat(),
            "model_ids": [m.id for m in services.catalog.list()],
            "query_types": QUERY_TYPES,
            "query_sources": QUERY_SOURCES,
            "csv_limit": f"{CSV_LIMIT:,}",
        }
        return web.render("activity.html", context)

    @web.page(CUSTOMER)
    async def rows(request: Request) -> Response:
        session = await web.require(request, CUSTOMER, activity=False)
        f, q = await read_filter(request, session)
        return web.render("_activity_rows.html", await rows_context(f, q))

    @web.page(CUSTOMER)
    async def export(request: Request) -> Response:
        session = await web.require(request, CUSTOMER)
        f, _q = await read_filter(request, session)
        await services.ledger.flush()
        every = dataclasses.replace(f, page=1, page_count=CSV_LIMIT)
        result = await services.history.page(every)
        names = await key_names(web, f.account_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in result.rows:
            writer.writerow(
                [
                    csv_cell(iso(r.created_at)),
                    csv_cell(r.model),
                    csv_cell(r.query_type),
                    csv_cell(r.query_source),
                    csv_cell(r.key_id),
                    csv_cell(names.get(r.key_id, "")),
                    int(r.input_count),
                    int(r.output_count),
                    format_usd(int(r.price)),
                ]
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return Response(
            out.getvalue(),
            headers={
                **SECURITY_HEADERS,
                **NO_STORE,
                "content-type": "text/csv; charset=utf-8",
                "content-disposition": f'attachment; filename="farebox-activity-{stamp}.csv"',
            },
        )

    return [
        Route("/dashboard/activity", activity, methods=["GET"]),
        Route("/dashboard/activity/rows", rows, methods=["GET"]),
        Route("/dashboard/activity.csv", export, methods=["GET"]),
    ]
