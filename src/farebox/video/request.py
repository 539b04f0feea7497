"""Reading `POST /v1/videos` against the catalog: accepted parameters, allowed values, price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farebox.catalog.model import CatalogModel
from farebox.catalog.units import second_price
from farebox.errors import InvalidRequest, quoted
from farebox.images.request import InputImage
from farebox.inputs import ascii_whole_number

CHOICES = ("duration", "quality", "aspect_ratio", "resolution")
FREE_TEXT = ("negative_prompt",)
VIDEO_URL = "video_url"
MAX_URL = 2048
ALWAYS = frozenset({"model", "prompt", "user"})
DEFAULT_DURATION = "5"


@dataclass(frozen=True)
class VideoJob:
    """What an adapter gets: validated values only."""

    prompt: str
    seconds: int
    params: Mapping[str, str]
    image: InputImage | None = None

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "seconds": self.seconds, "params": dict(self.params)}


@dataclass(frozen=True)
class VideoCall:
    model: CatalogModel
    job: VideoJob
    per_second: int
    image_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def quote(self) -> int:
        return self.per_second * self.job.seconds


def _video_url(value: Any) -> str:
    """A source video for video-to-video models: passed to the upstream, never fetched here."""
    if not isinstance(value, str) or not value.startswith("https://") or len(value) > MAX_URL:
        raise InvalidRequest(
            f"video_url must be a public https:// URL of at most {MAX_URL} characters.",
            param=VIDEO_URL,
        )
    return value


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequest(f"{name} must be a string.", param=name)
    return str(value).removesuffix("s") if name == "duration" else str(value)


def read_video_call(body: Mapping[str, Any], model: CatalogModel) -> VideoCall:
    accepted = model.parameters
    for name, value in body.items():
        if value is None or name in ALWAYS:
            continue
        if name not in accepted:
            known = ", ".join(sorted({"prompt", *accepted}))
            raise InvalidRequest(
                f"{model.id} does not accept the parameter {quoted(name)}. It accepts: {known}.",
                param=name,
            )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt (a description of the video) is required.", param="prompt")
    for name in model.required:
        if body.get(name) in (None, ""):
            raise InvalidRequest(f"{model.id} requires {name}.", param=name)
    params: dict[str, str] = {}
    for name in (*CHOICES, *FREE_TEXT):
        if name not in accepted:
            continue
        allowed = accepted[name]
        if body.get(name) is not None:
            value = _text(body[name], name)
            if allowed and value not in allowed:
                raise InvalidRequest(
                    f"{model.id} does not offer {name}={quoted(value)}; allowed: {', '.join(allowed)}.",
                    param=name,
                )
            params[name] = value
        elif allowed and name in CHOICES:
            params[name] = allowed[0]
    seconds = ascii_whole_number(params.get("duration", DEFAULT_DURATION), 2)
    if seconds is None or not 1 <= seconds <= 60:
        raise InvalidRequest(
            "duration must be a whole number of seconds from 1 to 60.", param="duration"
        )
    image_url = body.get("image_url")
    if image_url is not None and not isinstance(image_url, str):
        raise InvalidRequest("image_url must be a URL string.", param="image_url")
    if VIDEO_URL in accepted and body.get(VIDEO_URL) is not None:
        params[VIDEO_URL] = _video_url(body[VIDEO_URL])
    job = VideoJob(prompt=prompt, seconds=seconds, params=params)
    return VideoCall(model, job, second_price(model, params), image_url=image_url)
