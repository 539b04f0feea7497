"""Runway's video API: submit a task, then poll it.

`POST {base}/image_to_video` (an image and a prompt), `/text_to_video`, or `/video_to_video`
(Aleph: a source video and a prompt) answers `{"id"}`; `GET {base}/tasks/{id}` says PENDING,
THROTTLED, RUNNING, then SUCCEEDED with `output: [url]`, or FAILED with `failure`. Auth:
`Authorization: Bearer <key>` and the `X-Runway-Version` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farebox.catalog.model import ProviderConfig
from farebox.media.store import MediaFile
from farebox.providers.base import UpstreamFailure
from farebox.providers.fal import JobPoll, data_uri
from farebox.providers.media_http import MediaUpstream, json_body
from farebox.video.request import VIDEO_URL, VideoJob

API_VERSION = "2024-11-06"
RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "1:1": "960:960"}
FAILED = ("FAILED", "CANCELLED")


def task_input(upstream_model: str, job: VideoJob) -> tuple[str, dict[str, Any]]:
    """(the endpoint, its body) for a video job."""
    body: dict[str, Any] = {
        "model": upstream_model,
        "promptText": job.prompt,
        "ratio": RATIOS.get(job.params.get("aspect_ratio", "16:9"), "1280:720"),
    }
    if VIDEO_URL in job.params:
        body["videoUri"] = job.params[VIDEO_URL]
        return "/video_to_video", body
    body["duration"] = job.seconds
    if job.image is not None:
        body["promptImage"] = data_uri(job.image.data, job.image.content_type)
        return "/image_to_video", body
    return "/text_to_video", body


class RunwayProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._http = MediaUpstream(config)
        self._headers = {"X-Runway-Version": API_VERSION}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"

    async def submit_video(self, upstream_model: str, job: VideoJob) -> dict[str, str]:
        path, body = task_input(upstream_model, job)
        reply = await self._http.json(
            "POST",
            path,
            data=json_body(body),
            headers={**self._headers, "Content-Type": "application/json"},
        )
        task_id = reply.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise UpstreamFailure(
                f"{self.config.name} did not queue the task", provider=self.config.name
            )
        return {"task_id": task_id}

    async def poll_video(self, handle: Mapping[str, str]) -> JobPoll:
        task = await self._http.json("GET", f"/tasks/{handle['task_id']}", headers=self._headers)
        status = task.get("status")
        if status in FAILED:
            return JobPoll("failed", error=str(task.get("failure") or status))
        if status != "SUCCEEDED":
            return JobPoll("running")
        output = task.get("output")
        url = output[0] if isinstance(output, list) and output else None
        if not isinstance(url, str):
            raise UpstreamFailure(
                f"{self.config.name} returned no video", provider=self.config.name
            )
        data, content_type = await self._http.download(url)
        return JobPoll("completed", file=MediaFile(data, content_type or "video/mp4"))

    async def close(self) -> None:
        await self._http.close()
