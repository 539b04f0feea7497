"""The video_jobs table: insert at submit, claim due jobs with a lease, record the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from farebox.db.database import Database
from farebox.media.tables import video_jobs

ACTIVE = ("pending", "processing")


@dataclass(frozen=True)
class JobRow:
    id: str
    account_id: str
    key_id: str | None
    model: str
    status: str
    provider: str | None
    upstream: dict[str, Any]
    request: dict[str, Any]
    request_id: str
    holds: tuple[tuple[str, int], ...]
    estimated: int
    cost: int | None
    seconds: int
    error: str | None
    content_type: str | None
    attempts: int
    created_at: float
    query_source: str = "api"


def _row(r: Any) -> JobRow:
    return JobRow(
        id=r.id,
        account_id=r.account_id,
        key_id=r.key_id,
        model=r.model,
        status=r.status,
        provider=r.provider,
        upstream=orjson.loads(r.upstream or "{}"),
        request=orjson.loads(r.request),
        request_id=r.request_id,
        holds=tuple((str(t), int(a)) for t, a in orjson.loads(r.holds)),
        estimated=int(r.estimated),
        cost=None if r.cost is None else int(r.cost),
        seconds=int(r.seconds),
        error=r.error,
        content_type=r.content_type,
        attempts=int(r.attempts),
        created_at=float(r.created_at),
        query_source=r.query_source,
    )


class VideoJobs:
    def __init__(self, db: Database, lease_s: float = 120.0) -> None:
        self.db = db
        self.lease_s = lease_s

    async def create(self, job: JobRow) -> None:
        values = {
            "id": job.id,
            "account_id": job.account_id,
            "key_id": job.key_id,
            "model": job.model,
            "status": job.status,
            "provider": job.provider,
            "upstream": orjson.dumps(job.upstream).decode(),
            "request": orjson.dumps(job.request).decode(),
            "request_id": job.request_id,
            "holds": orjson.dumps([list(h) for h in job.holds]).decode(),
            "estimated": job.estimated,
            "seconds": job.seconds,
            "attempts": 0,
            "next_poll_at": job.created_at,
            "lease_until": 0.0,
            "created_at": job.created_at,
            "query_source": job.query_source,
        }

        def write(conn: Any) -> None:
            conn.execute(insert(video_jobs).values(**values))

        await self.db.write(write)

    async def get(self, job_id: str) -> JobRow | None:
        def read(conn: Any) -> Any:
            return conn.execute(select(video_jobs).where(video_jobs.c.id == job_id)).first()

        row = await self.db.read(read)
        return None if row is None else _row(row)

    async def claim_due(self, limit: int = 16, now: float | None = None) -> list[JobRow]:
        """Active jobs whose next poll is due, each leased to this process (safe across
        replicas: a job another process holds the lease on is skipped)."""
        at = now or time.time()

        def claim(conn: Any) -> list[Any]:
            due = conn.execute(
                select(video_jobs.c.id)
                .where(video_jobs.c.status.in_(ACTIVE))
                .where(video_jobs.c.next_poll_at <= at)
                .where(video_jobs.c.lease_until < at)
                .order_by(video_jobs.c.next_poll_at)
                .limit(limit)
            ).all()
            claimed = []
            for (job_id,) in due:
                result = conn.execute(
                    update(video_jobs)
                    .where(video_jobs.c.id == job_id)
                    .where(video_jobs.c.lease_until < at)
                    .values(lease_until=at + self.lease_s)
                )
                if result.rowcount == 1:
                    claimed.append(
                        conn.execute(select(video_jobs).where(video_jobs.c.id == job_id)).first()
                    )
            return claimed

        return [_row(r) for r in await self.db.write(claim)]

    async def release(self, job_ids: list[str]) -> None:
        """Drop this process's leases (on shutdown)."""

        def write(conn: Any) -> None:
            conn.execute(
                update(video_jobs).where(video_jobs.c.id.in_(job_ids)).values(lease_until=0.0)
            )

        await self.db.write(write)

    async def update(self, job_id: str, **values: Any) -> None:
        def write(conn: Any) -> None:
            conn.execute(update(video_jobs).where(video_jobs.c.id == job_id).values(**values))

        await self.db.write(write)
