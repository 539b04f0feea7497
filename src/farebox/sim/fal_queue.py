"""A fal-style queue API for image and video models: submit, status, result, files.

`POST /fal/{model}` queues a job and answers `{request_id, status_url, response_url}`;
`GET .../requests/{id}/status` says IN_QUEUE, IN_PROGRESS, then COMPLETED once `job_ms` has
passed (fault key, default 0); `GET .../requests/{id}` gives `{"images": [...]}` or, for a video
job (its input has a `duration`, or the model id contains "video"), `{"video": {...}}`, with URLs
of real files served by the simulator.
`job_fail=true` makes the job's result a 500 with fal's `{"detail": ...}`. Auth: `Key <key>`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from farebox.sim import media_gen
from farebox.sim.media_base import enter
from farebox.sim.openai_base import JSON_HEADERS, json_response, read_json_object

ENDPOINT = "fal"


@dataclass
class FalJob:
    id: str
    model: str
    input: dict[str, Any]
    started: float
    job_ms: float
    fail: bool
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)


class FalJobs:
    """The simulator's queued jobs, by id."""

    def __init__(self) -> None:
        self.jobs: dict[str, FalJob] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"sim-fal-{next(self._ids):06d}"


FAL_JOBS = web.AppKey("farebox_sim_fal_jobs", FalJobs)


def setup(app: web.Application) -> None:
    app[FAL_JOBS] = FalJobs()


def _detail(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"detail": message}), headers=JSON_HEADERS)


def _base(request: web.Request) -> str:
    spec = request.match_info.get("spec")
    return str(request.url.origin()) + (f"/sim/{spec}" if spec else "")


async def submit(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, ENDPOINT, scheme="Key", body=body)
    if isinstance(entered, web.Response):
        return entered
    _state, faults = entered
    model = request.match_info["model"]
    if not isinstance(body.get("prompt"), str) and "image_url" not in body:
        return _detail(422, "prompt is required")
    jobs = request.app[FAL_JOBS]
    job = FalJob(
        jobs.new_id(), model, body, time.monotonic(), faults.job_ms or 0.0, bool(faults.job_fail)
    )
    jobs.jobs[job.id] = job
    url = f"{_base(request)}/fal/{model}/requests/{job.id}"
    return json_response(
        {
            "request_id": job.id,
            "status": "IN_QUEUE",
            "queue_position": 0,
            "status_url": f"{url}/status",
            "response_url": url,
            "cancel_url": f"{url}/cancel",
        }
    )


def _job(request: web.Request) -> FalJob | None:
    return request.app[FAL_JOBS].jobs.get(request.match_info["id"])


def _phase(job: FalJob) -> str:
    elapsed_ms = (time.monotonic() - job.started) * 1000
    if elapsed_ms >= job.job_ms:
        return "COMPLETED"
    return "IN_QUEUE" if elapsed_ms < job.job_ms / 2 else "IN_PROGRESS"


async def status(request: web.Request) -> web.StreamResponse:
    entered = await enter(request, ENDPOINT + ".status", scheme="Key")
    if isinstance(entered, web.Response):
        return entered
    job = _job(request)
    if job is None:
        return _detail(404, "Request not found")
    phase = _phase(job)
    url = f"{_base(request)}/fal/{job.model}/requests/{job.id}"
    reply: dict[str, Any] = {"status": phase, "request_id": job.id, "response_url": url}
    if phase == "IN_QUEUE":
        reply["queue_position"] = 0
    return json_response(reply, headers=None)


def _is_video(job: FalJob) -> bool:
    """Video models take a duration (veo3, kling, ...); image models never do."""
    return "duration" in job.input or "video" in job.model


def _outputs(job: FalJob) -> dict[str, tuple[bytes, str]]:
    if job.files:
        return job.files
    prompt = str(job.input.get("prompt") or "")
    if _is_video(job):
        seconds = float(str(job.input.get("duration") or "5").rstrip("s") or 5)
        job.files["0.mp4"] = (media_gen.mp4(seconds, prompt), "video/mp4")
        return job.files
    fmt = str(job.input.get("output_format") or "png")
    size = job.input.get("aspect_ratio") or job.input.get("image_size")
    for i in range(int(job.input.get("num_images") or 1)):
        data = media_gen.image(prompt, str(size) if size else None, fmt, i)
        job.files[f"{i}.{fmt}"] = (data, media_gen.IMAGE_FORMATS.get(fmt, "image/png"))
    return job.files


async def result(request: web.Request) -> web.StreamResponse:
    entered = await enter(request, ENDPOINT + ".result", scheme="Key")
    if isinstance(entered, web.Response):
        return entered
    job = _job(request)
    if job is None:
        return _detail(404, "Request not found")
    if _phase(job) != "COMPLETED":
        return _detail(400, "Request is still in progress")
    if job.fail:
        return _detail(500, "Simulated generation failure (sim job_fail).")
    files_url = f"{request.url.origin()}/fal/files/{job.id}"
    outputs = [
        {"url": f"{files_url}/{name}", "content_type": ctype, "file_size": len(data)}
        for name, (data, ctype) in _outputs(job).items()
    ]
    if _is_video(job):
        return json_response({"video": outputs[0]})
    return json_response({"images": outputs, "seed": 42, "prompt": job.input.get("prompt")})


async def file(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    entry = job.files.get(request.match_info["name"]) if job else None
    if entry is None:
        return _detail(404, "File not found")
    return web.Response(body=entry[0], headers={"Content-Type": entry[1]})


ROUTES: tuple[web.RouteDef, ...] = (
    web.get("/fal/files/{id}/{name}", file),
    web.get(r"/fal/{model:.+}/requests/{id}/status", status),
    web.get(r"/fal/{model:.+}/requests/{id}", result),
    web.post(r"/fal/{model:.+}", submit),
)
