"""The background worker: polls every active video job upstream and settles it when it ends,
whether or not the client ever asks. State lives in the database, so a job submitted before a
restart (or on another replica) is picked up and settled all the same."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import time
from typing import Any

from farebox import optional
from farebox.ledger.service import Ledger
from farebox.ledger.types import QueryRecord, Settlement
from farebox.media.store import MediaFile, MediaStore
from farebox.periodic import cancel
from farebox.providers.base import UpstreamFailure
from farebox.providers.fal import JobPoll
from farebox.providers.router import Router
from farebox.video.service import VIDEO_HOLD_S
from farebox.video.store import JobRow, VideoJobs

log = logging.getLogger("farebox.video")

MAX_TRANSIENT_FAILURES = 60
"""Consecutive failed polls (upstream unreachable) before a job is given up as failed, free."""


def video_seconds(data: bytes) -> float:
    """The video's length from its decoded frames' timestamps (FFmpeg)."""
    av = optional.av()
    with av.open(io.BytesIO(data), mode="r") as box:
        if not box.streams.video:
            raise ValueError("no video stream")
        stream = box.streams.video[0]
        last = 0.0
        frames = 0
        for frame in box.decode(stream):
            frames += 1
            if frame.time is not None:
                last = max(last, float(frame.time))
        rate = float(stream.average_rate or 0) or 1.0
    if frames == 0:
        raise ValueError("no frames")
    return last + 1.0 / rate


class VideoWorker:
    def __init__(
        self,
        jobs: VideoJobs,
        router: Router,
        ledger: Ledger,
        media: MediaStore,
        interval_s: float = 2.0,
    ) -> None:
        self.jobs = jobs
        self.router = router
        self.ledger = ledger
        self.media = media
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._leased: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self._leased:  # stopped mid-poll: let another process take these jobs at once
            await self.jobs.release(sorted(self._leased))
            self._leased.clear()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("video worker pass failed; will retry")
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> int:
        """Poll every due job once; returns how many were polled."""
        claim = asyncio.ensure_future(self.jobs.claim_due())
        try:
            due = await asyncio.shield(claim)
        except asyncio.CancelledError:
            # Stopped while the claim was in flight: it may still commit its leases, so wait
            # for it and remember them, for stop() to release.
            with contextlib.suppress(Exception):
                self._leased.update(job.id for job in await claim)
            raise
        self._leased.update(job.id for job in due)
        try:
            await asyncio.gather(*(self._poll(job) for job in due))
        except asyncio.CancelledError:
            raise  # still leased: stop() releases them, so another process polls them at once
        except BaseException:
            self._leased.difference_update(job.id for job in due)
            raise
        self._leased.difference_update(job.id for job in due)
        return len(due)

    async def _poll(self, job: JobRow) -> None:
        provider: Any = self.router.providers.get(job.provider or "")
        try:
            if provider is None:
                raise UpstreamFailure(f"provider {job.provider} is not configured", provider="")
            result: JobPoll = await provider.poll_video(job.upstream)
        except UpstreamFailure as failure:
            await self._transient(job, failure.message)
            return
        except Exception:  # a bug or an unreadable reply: retry, then give up
            log.exception("polling video job %s failed", job.id)
            await self._transient(job, "its reply could not be read")
            return
        if result.state == "running":
            await self._keep_hold(job)
            await self.jobs.update(
                job.id,
                status="processing",
                attempts=0,
                next_poll_at=time.time() + self.interval_s,
                lease_until=0.0,
            )
        elif result.state == "completed" and result.file is not None:
            await self._complete(job, result.file)
        else:
            await self._fail(job, result.error or "The upstream provider could not make the video.")

    async def _keep_hold(self, job: JobRow) -> None:
        """Push the hold's timeout out once a long job has used half of it (so the sweeper
        never voids a job that is still running)."""
        if time.time() - job.created_at < VIDEO_HOLD_S / 2:
            return
        try:
            await self.ledger.record_progress(job.request_id, 0, None, time.time() + VIDEO_HOLD_S)
        except Exception:
            log.exception("could not extend the hold of video job %s", job.id)

    async def _transient(self, job: JobRow, message: str) -> None:
        if job.attempts + 1 >= MAX_TRANSIENT_FAILURES:
            await self._fail(job, f"The upstream provider stopped answering ({message}).")
            return
        backoff = min(60.0, self.interval_s * 2 ** min(job.attempts, 5))
        await self.jobs.update(
            job.id,
            attempts=job.attempts + 1,
            next_poll_at=time.time() + backoff,
            lease_until=0.0,
        )

    async def _complete(self, job: JobRow, file: MediaFile) -> None:
        try:
            seconds = await asyncio.to_thread(video_seconds, file.data)
        except (ValueError, optional.av().FFmpegError):
            await self._fail(job, "The upstream provider sent a video that does not decode.")
            return
        per_second = job.estimated // max(job.seconds, 1)
        billed = min(job.seconds, max(1, math.ceil(seconds - 1e-6)))
        cost = min(per_second * billed, job.estimated)
        await self.media.save(job.id, job.account_id, [file])
        await self._settle(job, cost, billed)
        await self.jobs.update(
            job.id,
            status="completed",
            cost=cost,
            content_type=file.content_type,
            finished_at=time.time(),
            lease_until=0.0,
        )

    async def _fail(self, job: JobRow, message: str) -> None:
        await self._settle(job, 0, 0)
        await self.jobs.update(
            job.id, status="failed", error=message, cost=0, finished_at=time.time(), lease_until=0.0
        )

    async def _settle(self, job: JobRow, cost: int, seconds: int) -> None:
        """Post `cost` (voiding the rest); a failed job voids everything and leaves no row.
        Settling twice is harmless: the second finds the holds resolved and posts nothing."""
        query = (
            QueryRecord(
                model=job.model,
                input_count=job.seconds,
                output_count=seconds,
                query_type="video",
                query_source=job.query_source,
            )
            if cost > 0
            else None
        )
        await self.ledger.settle(
            Settlement(
                request_id=job.request_id,
                account_id=job.account_id,
                key_id=job.key_id,
                holds=job.holds,
                actual=cost,
                query=query,
                created_at=job.created_at,
            )
        )
