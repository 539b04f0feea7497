"""The video worker's bookkeeping: long jobs keep their hold, and settling twice (a crash
between settling and recording it) charges once."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from sqlalchemy import select, update

from farebox.db.schema import holds
from farebox.media.tables import video_jobs
from farebox.video.worker import VideoWorker

from media_support import spent
from support import NANOS, Gateway, wait_until


def submit(gw: Gateway, key: str, model: str) -> str:
    with gw.client() as c:
        r = c.post(
            "/v1/videos",
            json={"model": model, "prompt": "long"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


@pytest.mark.slow  # outlives a hold timeout: seconds
def test_a_long_running_job_keeps_its_hold(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    job_id = submit(media_gw, key, "slow-video")
    db = media_gw.services.db
    four_hours_ago = time.time() - 4 * 3600

    def age(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            update(video_jobs).where(video_jobs.c.id == job_id).values(created_at=four_hours_ago)
        )

    media_gw.loop.run(db.write(age))

    def hold_expiry(conn: object) -> float:
        job = conn.execute(  # type: ignore[attr-defined]
            select(video_jobs.c.request_id).where(video_jobs.c.id == job_id)
        ).scalar_one()
        rows = conn.execute(  # type: ignore[attr-defined]
            select(holds.c.expires_at).where(holds.c.request_id == job)
        ).all()
        return min(r[0] for r in rows) if rows else 0.0

    # Polled while running past half its hold: the hold is pushed out to six hours from now.
    assert wait_until(
        lambda: media_gw.loop.run(db.read(hold_expiry)) > time.time() + 5.9 * 3600, timeout=20
    )
    assert wait_until(lambda: media_gw.nanos(credit_id)[1] == 0, timeout=30)
    assert spent(media_gw, credit_id, NANOS) == 250_000_000


def test_settling_a_job_twice_charges_once(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    job_id = submit(media_gw, key, "kling-2.1-pro")
    worker = media_gw.services.media.worker

    def finished() -> bool:
        row = media_gw.loop.run(worker.jobs.get(job_id))
        return row is not None and row.status == "completed"

    assert wait_until(finished, timeout=30)
    row = media_gw.loop.run(worker.jobs.get(job_id))
    media_gw.loop.run(worker._settle(row, row.estimated, row.seconds))  # replayed after a crash
    assert spent(media_gw, credit_id, NANOS) == 250_000_000


def test_a_worker_stopped_mid_poll_releases_its_jobs_at_once(media_gw: Gateway) -> None:
    """A process that stops while a status poll is in flight gives its lease back, so the next
    process polls the job at once instead of after the two-minute lease (the restart test
    flaked on this: the cancelled poll forgot what it had leased)."""
    _credit_id, key = media_gw.create_account(1)
    job_id = submit(media_gw, key, "sleepy-video")
    worker = media_gw.services.media.worker

    def read_lease(conn: object) -> float:
        return float(
            conn.execute(  # type: ignore[attr-defined]
                select(video_jobs.c.lease_until).where(video_jobs.c.id == job_id)
            ).scalar_one()
        )

    def lease_until() -> float:
        return float(media_gw.loop.run(media_gw.services.db.read(read_lease)))

    assert wait_until(lambda: lease_until() > time.time() + 60, timeout=20)  # a poll in flight
    media_gw.loop.run(worker.stop())
    try:
        assert lease_until() == 0.0
    finally:
        media_gw.loop.run(_start(worker))


async def _start(worker: object) -> None:
    worker.start()  # type: ignore[attr-defined]


def test_a_worker_stopped_while_claiming_releases_what_the_claim_leased(media_gw: Gateway) -> None:
    """The claim is a database write: stopped while it is in flight, the worker still learns
    what it leased and gives it back (it used to keep those leases for two minutes)."""
    _credit_id, key = media_gw.create_account(1)
    running = media_gw.services.media.worker
    media_gw.loop.run(running.stop())  # this test's worker claims the job, not the gateway's
    try:
        job_id = submit(media_gw, key, "slow-video")
        worker = VideoWorker(running.jobs, running.router, running.ledger, running.media)

        async def stop_while_claiming() -> None:
            task = asyncio.create_task(worker.run_once())
            await asyncio.sleep(0)  # the claim is in flight
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.stop()

        media_gw.loop.run(stop_while_claiming())

        def read_lease(conn: object) -> float:
            return float(
                conn.execute(  # type: ignore[attr-defined]
                    select(video_jobs.c.lease_until).where(video_jobs.c.id == job_id)
                ).scalar_one()
            )

        def lease() -> float:
            return float(media_gw.loop.run(media_gw.services.db.read(read_lease)))

        # On PostgreSQL the claim runs in a database thread that outlives the cancellation:
        # give a claim the worker forgot the time to commit, then look.
        wait_until(lambda: lease() != 0.0, timeout=1.0)
        assert lease() == 0.0
    finally:
        media_gw.loop.run(_start(running))
