"""Submitting a video job (hold, then queue it upstream) and reading it back."""

from __future__ import annotations

import time
from typing import Any

from farebox.catalog.model import Catalog, CatalogModel, Route
from farebox.errors import InvalidRequest, NotFound, quoted
from farebox.images.inputs import fetch_image
from farebox.inputs import plausible_id
from farebox.keys.store import ApiKey
from farebox.media.signing import StatusSigner
from farebox.media.store import MediaStore, new_gen_id
from farebox.modalities.paid import Buyer, Payer, call_capability, require_type, usd
from farebox.net.ssrf import FetchPolicy
from farebox.providers.router import Router
from farebox.video.request import VideoCall, VideoJob, read_video_call
from farebox.video.store import JobRow, VideoJobs

VIDEO_HOLD_S = 6 * 3600.0
"""How long a video hold lasts before the sweeper may void it; the worker pushes it out while
the job runs."""


class VideoService:
    def __init__(
        self,
        catalog: Catalog,
        router: Router,
        payer: Payer,
        jobs: VideoJobs,
        media: MediaStore,
        fetch_policy: FetchPolicy,
        status: StatusSigner,
    ) -> None:
        self.catalog = catalog
        self.router = router
        self.payer = payer
        self.jobs = jobs
        self.media = media
        self.fetch_policy = fetch_policy
        self.status = status

    def _model(self, body: dict[str, Any]) -> CatalogModel:
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise InvalidRequest("model is required. See GET /v1/models?type=video.", param="model")
        model = self.catalog.resolve(model_id)
        require_type(model, "video", endpoint="/v1/videos")
        return model

    def read_submission(self, body: dict[str, Any]) -> VideoCall:
        """Validate and price POST /v1/videos (`quote` is the estimate held) before any money
        moves."""
        return read_video_call(body, self._model(body))

    async def submit(
        self, buyer: Buyer, call: VideoCall, base_url: str
    ) -> tuple[dict[str, Any], int]:
        """Hold the estimated cost, fetch an `image_url` input, queue the job upstream, record it.

        Returns the job's body (with its signed `status_url` under `base_url`) and the estimate
        (nanodollars) that is held."""
        model = call.model
        # The hold checks the key's scope and rate limits: a request they refuse makes no
        # outbound fetch. A fetch that fails voids the hold (nothing is charged).
        charge = await buyer.open(call.quote, model, hold_timeout_s=VIDEO_HOLD_S)
        job = call.job

        async def attempt(provider: Any, route: Route) -> tuple[str, dict[str, str]]:
            handle: dict[str, str] = await provider.submit_video(route.upstream_model, job)
            return route.provider, handle

        try:
            if call.image_url:
                image = await fetch_image(call.image_url, self.fetch_policy)
                job = VideoJob(job.prompt, job.seconds, job.params, image)
            provider, handle = await call_capability(self.router, model, "submit_video", attempt)
            row = JobRow(
                id=new_gen_id(),
                account_id=buyer.account_id,
                key_id=buyer.key_id,
                model=model.id,
                status="pending",
                provider=provider,
                upstream=handle,
                request=job.to_json(),
                request_id=charge.request_id,
                holds=tuple(charge.holds),
                estimated=call.quote,
                cost=None,
                seconds=job.seconds,
                error=None,
                content_type=None,
                attempts=0,
                created_at=time.time(),
                query_source=buyer.source,
            )
            await self.jobs.create(row)
        except BaseException:
            charge.void()
            raise
        body = {
            "id": row.id,
            "object": "video",
            "model": model.id,
            "status": "pending",
            "created": int(row.created_at),
            "estimated_cost": usd(call.quote),
            "status_url": self.status_url(base_url, row.id),
        }
        return body, call.quote

    def status_url(self, base_url: str, job_id: str) -> str:
        """A URL that polls the job with no API key, valid as long as media URLs (24 h)."""
        return base_url.rstrip("/") + self.status.path(job_id)

    async def get(self, key: ApiKey, job_id: str, base_url: str) -> tuple[int, dict[str, Any], int]:
        """(HTTP status, body, cost in nanodollars) for the caller's own job; 404 otherwise."""
        row = await self.jobs.get(job_id) if plausible_id(job_id) else None
        if row is None or row.account_id != key.account_id:
            raise NotFound(f"There is no video job {quoted(job_id)} on this account.", param="id")
        return self._describe(row, base_url)

    async def get_signed(
        self, job_id: str, sig: str, exp: str, base_url: str
    ) -> tuple[int, dict[str, Any], int]:
        """The same answer for whoever holds the job's signed status URL (no API key): 403 for
        a bad or expired signature, checked before the job is looked up."""
        self.status.verify(job_id, sig, exp)
        row = await self.jobs.get(job_id)
        if row is None:
            raise NotFound(f"There is no video job {quoted(job_id)}.", param="id")
        return self._describe(row, base_url)

    def _describe(self, row: JobRow, base_url: str) -> tuple[int, dict[str, Any], int]:
        body: dict[str, Any] = {
            "id": row.id,
            "object": "video",
            "model": row.model,
            "status": row.status,
            "created": int(row.created_at),
        }
        if row.status == "completed":
            body["data"] = {
                "url": self.media.url(base_url, row.id, 0),
                "content_type": row.content_type or "video/mp4",
            }
            body["cost"] = usd(row.cost or 0)
            return 200, body, row.cost or 0
        if row.status == "failed":
            body["error"] = {"message": row.error or "The video could not be generated."}
            body["cost"] = 0.0
            return 200, body, 0
        body["estimated_cost"] = usd(row.estimated)
        return 202, body, 0
