"""fal-style queue APIs (image and video models): submit, poll status, fetch the result.

Submit `POST {base}/{model}` with the model's input; the reply names a `status_url` and a
`response_url`. Status goes IN_QUEUE → IN_PROGRESS → COMPLETED; the result then holds
`images[]` or `video` with file URLs, downloaded here. Auth: `Authorization: Key <key>`.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from farebox.catalog.model import ProviderConfig
from farebox.images.request import ImageJob
from farebox.media.store import MediaFile
from farebox.providers.base import UpstreamFailure
from farebox.providers.media_http import MediaUpstream, json_body
from farebox.video.request import VideoJob

DONE = "COMPLETED"
IMAGE_WAIT_S = 300.0


@dataclass(frozen=True, slots=True)
class JobPoll:
    """Where an upstream job stands: running, done (with its file) or failed (with why)."""

    state: str  # "running" | "completed" | "failed"
    file: MediaFile | None = None
    error: str | None = None


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def image_input(job: ImageJob) -> dict[str, Any]:
    """fal's input fields for an image job."""
    payload: dict[str, Any] = {"num_images": job.n}
    if job.prompt is not None:
        payload["prompt"] = job.prompt
    for name, value in job.params.items():
        if name == "size":
            payload["aspect_ratio" if ":" in value else "image_size"] = value
        else:
            payload[name] = value
    if job.image is not None:
        payload["image_url"] = data_uri(job.image.data, job.image.content_type)
    if job.mask is not None:
        payload["mask_url"] = data_uri(job.mask.data, job.mask.content_type)
    return payload


def video_input(job: VideoJob) -> dict[str, Any]:
    """fal's input fields for a video job (quality travels as `resolution`)."""
    payload: dict[str, Any] = {"prompt": job.prompt, "duration": str(job.seconds)}
    for name, value in job.params.items():
        if name == "duration":
            continue
        payload["resolution" if name == "quality" else name] = value
    if job.image is not None:
        payload["image_url"] = data_uri(job.image.data, job.image.content_type)
    return payload


def _detail(failure: UpstreamFailure) -> str:
    try:
        detail = orjson.loads(failure.body or b"").get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    return f"The upstream provider failed the job: {detail or failure.message}"


class FalProvider:
    def __init__(self, config: ProviderConfig, poll_interval_s: float = 0.25) -> None:
        self.config = config
        self._http = MediaUpstream(config)
        self._headers = {"Authorization": f"Key {config.api_key}"} if config.api_key else {}
        self.poll_interval_s = poll_interval_s

    async def submit(self, upstream_model: str, payload: Mapping[str, Any]) -> dict[str, str]:
        """Queue a job; returns its handle (request id and the URLs to poll)."""
        reply = await self._http.json(
            "POST",
            "/" + upstream_model.strip("/"),
            data=json_body(payload),
            headers={**self._headers, "Content-Type": "application/json"},
        )
        handle = {k: reply.get(k) for k in ("request_id", "status_url", "response_url")}
        if not all(isinstance(v, str) and v for v in handle.values()):
            raise UpstreamFailure(
                f"{self.config.name} did not queue the job", provider=self.config.name
            )
        return {k: str(v) for k, v in handle.items()}

    async def poll(self, handle: Mapping[str, str], kind: str) -> JobPoll:
        """One status check; on COMPLETED, fetch the result and download its first file.

        A completed job whose result is an HTTP error failed upstream (JobPoll "failed");
        a status check that cannot reach the upstream raises UpstreamFailure (try later).
        """
        status = await self._http.json("GET", handle["status_url"], headers=self._headers)
        if status.get("status") != DONE:
            if status.get("status") in ("FAILED", "ERROR", "CANCELLED"):
                return JobPoll("failed", error=str(status.get("error") or status.get("status")))
            return JobPoll("running")
        try:
            files = await self.results(handle, kind)
        except UpstreamFailure as failure:
            if failure.status is None:
                raise
            return JobPoll("failed", error=_detail(failure))
        return JobPoll("completed", file=files[0])

    async def submit_video(self, upstream_model: str, job: VideoJob) -> dict[str, str]:
        return await self.submit(upstream_model, video_input(job))

    async def poll_video(self, handle: Mapping[str, str]) -> JobPoll:
        return await self.poll(handle, "video")

    async def results(self, handle: Mapping[str, str], kind: str) -> list[MediaFile]:
        try:
            result = await self._http.json("GET", handle["response_url"], headers=self._headers)
        except UpstreamFailure as failure:
            if failure.status is not None and 400 <= failure.status < 600:
                failure.retryable = True  # the job failed: nothing to show, try another route
            raise
        items = (
            [result["video"]]
            if kind == "video" and isinstance(result.get("video"), dict)
            else result.get("images")
        )
        if not isinstance(items, list) or not items:
            raise UpstreamFailure(
                f"{self.config.name} returned no {kind}", provider=self.config.name
            )
        files = []
        for item in items:
            url = item.get("url") if isinstance(item, dict) else None
            if not isinstance(url, str):
                raise UpstreamFailure(
                    f"{self.config.name} returned a file without a URL", provider=self.config.name
                )
            data, content_type = await self._http.download(url)
            files.append(MediaFile(data, str(item.get("content_type") or content_type)))
        return files

    async def generate_images(self, upstream_model: str, job: ImageJob) -> list[MediaFile]:
        handle = await self.submit(upstream_model, image_input(job))
        deadline = time.monotonic() + IMAGE_WAIT_S
        while True:
            status = await self._http.json("GET", handle["status_url"], headers=self._headers)
            if status.get("status") == DONE:
                return await self.results(handle, "image")
            if time.monotonic() > deadline:
                raise UpstreamFailure(
                    f"{self.config.name} did not finish in time", provider=self.config.name
                )
            await asyncio.sleep(self.poll_interval_s)

    async def close(self) -> None:
        await self._http.close()
