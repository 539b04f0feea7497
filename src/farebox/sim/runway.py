"""Runway's task API: `POST /v1/image_to_video`, `/v1/text_to_video`, `/v1/video_to_video`
answer `{"id"}`; `GET /v1/tasks/{id}` says PENDING, RUNNING, then SUCCEEDED with `output` (the
URL of a real MP4 served here) once `job_ms` has passed (fault key), or FAILED with `failure`
when `job_fail=true`. Auth `Bearer`; like Runway, a request without `X-Runway-Version` is a 400.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from farebox.sim import media_gen
from farebox.sim.media_base import enter
from farebox.sim.openai_base import error_response, json_response, read_json_object

DURATIONS = (5, 10)


@dataclass
class RunwayTask:
    id: str
    prompt: str
    seconds: int
    started: float
    job_ms: float
    fail: bool
    video: bytes | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


class RunwayTasks:
    def __init__(self) -> None:
        self.tasks: dict[str, RunwayTask] = {}
        self._n = itertools.count(1)


RUNWAY_TASKS = web.AppKey("farebox_sim_runway_tasks", RunwayTasks)


def setup(app: web.Application) -> None:
    app[RUNWAY_TASKS] = RunwayTasks()


def _missing(body: dict[str, Any], *names: str) -> str | None:
    for name in names:
        if not isinstance(body.get(name), str) or not body[name]:
            return name
    return None


async def _submit(request: web.Request, needs: tuple[str, ...]) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, "runway.submit", scheme="Bearer", body=body)
    if isinstance(entered, web.Response):
        return entered
    _state, faults = entered
    if not request.headers.get("X-Runway-Version"):
        return error_response(400, "The X-Runway-Version header is required.")
    missing = _missing(body, "model", "promptText", *needs)
    if missing is not None:
        return error_response(400, f"{missing} is required.")
    seconds = body.get("duration", 5)
    if "videoUri" not in needs and seconds not in DURATIONS:
        return error_response(400, f"duration must be one of {DURATIONS}.")
    tasks = request.app[RUNWAY_TASKS]
    task = RunwayTask(
        id=str(uuid.UUID(int=next(tasks._n))),
        prompt=body["promptText"],
        seconds=int(seconds),
        started=time.monotonic(),
        job_ms=faults.job_ms or 0.0,
        fail=bool(faults.job_fail),
        inputs={k: body[k] for k in ("model", "ratio", "videoUri") if k in body},
    )
    tasks.tasks[task.id] = task
    return json_response({"id": task.id})


async def image_to_video(request: web.Request) -> web.StreamResponse:
    return await _submit(request, ("promptImage",))


async def text_to_video(request: web.Request) -> web.StreamResponse:
    return await _submit(request, ())


async def video_to_video(request: web.Request) -> web.StreamResponse:
    return await _submit(request, ("videoUri",))


async def task_status(request: web.Request) -> web.StreamResponse:
    entered = await enter(request, "runway.task", scheme="Bearer")
    if isinstance(entered, web.Response):
        return entered
    task = request.app[RUNWAY_TASKS].tasks.get(request.match_info["id"])
    if task is None:
        return error_response(404, "Task not found.")
    elapsed_ms = (time.monotonic() - task.started) * 1000
    reply: dict[str, Any] = {"id": task.id, "createdAt": "2026-01-01T00:00:00.000Z"}
    if elapsed_ms < task.job_ms:
        reply["status"] = "PENDING" if elapsed_ms < task.job_ms / 2 else "RUNNING"
    elif task.fail:
        reply.update(status="FAILED", failure="Simulated generation failure (sim job_fail).")
    else:
        origin = str(request.url.origin())
        reply.update(status="SUCCEEDED", output=[f"{origin}/runway/files/{task.id}.mp4"])
    return json_response(reply)


async def task_file(request: web.Request) -> web.StreamResponse:
    task = request.app[RUNWAY_TASKS].tasks.get(request.match_info["id"])
    if task is None:
        return error_response(404, "File not found.")
    if task.video is None:
        task.video = media_gen.mp4(task.seconds, task.prompt)
    return web.Response(body=task.video, headers={"Content-Type": "video/mp4"})


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/v1/image_to_video", image_to_video),
    web.post("/v1/text_to_video", text_to_video),
    web.post("/v1/video_to_video", video_to_video),
    web.get("/v1/tasks/{id}", task_status),
    web.get("/runway/files/{id}.mp4", task_file),
)
