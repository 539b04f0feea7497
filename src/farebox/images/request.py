"""Reading an image request (PPQ's parameters, or OpenAI's edits form) against the catalog.

Each model lists the parameters it accepts and their allowed values; anything else is refused
with a 400 before any money moves. `num_images` is `n`, `aspect_ratio` is `size`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farebox.catalog.model import CatalogModel
from farebox.catalog.units import image_unit_price
from farebox.errors import InvalidRequest, quoted
from farebox.inputs import ascii_whole_number

MAX_IMAGES = 4
CHOICE_PARAMS = ("quality", "size", "resolution", "output_format")
"""Parameters whose value the catalog may restrict (and which pick the unit price)."""
FREE_TEXT_PARAMS = ("negative_prompt",)
ALIASES = {"num_images": "n", "aspect_ratio": "size"}
ALWAYS = frozenset({"model", "prompt", "n", "response_format", "user"})
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True, slots=True)
class InputImage:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class ImageJob:
    """What an adapter gets: validated values only."""

    prompt: str | None
    n: int
    params: Mapping[str, str]
    image: InputImage | None = None
    mask: InputImage | None = None


@dataclass(frozen=True)
class ImageCall:
    model: CatalogModel
    job: ImageJob
    unit_price: int
    response_format: str = "url"
    image_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def quote(self) -> int:
        return self.unit_price * self.job.n


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequest(f"{name} must be a string.", param=name)
    return str(value)


def _count(value: Any) -> int:
    if isinstance(value, str):
        value = ascii_whole_number(value.strip(), 2)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IMAGES:
        raise InvalidRequest(f"n must be a whole number from 1 to {MAX_IMAGES}.", param="n")
    return value


def read_image_call(values: Mapping[str, Any], model: CatalogModel, *, edit: bool) -> ImageCall:
    """Validate `values` (a JSON body or the edits form's text fields) for `model`."""
    accepted = model.parameters
    given: dict[str, Any] = {}
    for raw_name, value in values.items():
        if value is None:
            continue
        name = ALIASES.get(raw_name, raw_name)
        if name in given:
            raise InvalidRequest(
                f"Give {name} only once (it is also spelled {raw_name}).", param=raw_name
            )
        given[name] = value
    for name in given:
        if name in ALWAYS or (name == "image_url" and not edit):
            if name == "image_url" and "image_url" not in accepted:
                raise _not_accepted(model, name)
            continue
        if name not in accepted:
            raise _not_accepted(model, name)
    params: dict[str, str] = {}
    for name in (*CHOICE_PARAMS, *FREE_TEXT_PARAMS):
        if name not in accepted:
            continue
        allowed = accepted[name]
        if name in given:
            value = _text(given[name], name)
            if allowed and value not in allowed:
                raise InvalidRequest(
                    f"{model.id} does not offer {name}={quoted(value)}; allowed: {', '.join(allowed)}.",
                    param=name,
                )
            params[name] = value
        elif allowed and name in CHOICE_PARAMS:
            params[name] = allowed[0]
    prompt = given.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise InvalidRequest("prompt must be a non-empty string.", param="prompt")
    for name in model.required:
        if name == "image_url" and edit:
            continue  # the uploaded file is the input image
        if name not in given:
            raise InvalidRequest(f"{model.id} requires {name}.", param=name)
    response_format = str(given.get("response_format") or "url")
    if response_format not in ("url", "b64_json"):
        raise InvalidRequest("response_format must be url or b64_json.", param="response_format")
    image_url = given.get("image_url")
    if image_url is not None and not isinstance(image_url, str):
        raise InvalidRequest("image_url must be a URL string.", param="image_url")
    job = ImageJob(prompt=prompt, n=_count(given.get("n", 1)), params=params)
    return ImageCall(
        model=model,
        job=job,
        unit_price=image_unit_price(model, params),
        response_format=response_format,
        image_url=image_url,
    )


def _not_accepted(model: CatalogModel, name: str) -> InvalidRequest:
    known = ", ".join(sorted({"prompt", "n", *model.parameters})) or "none"
    return InvalidRequest(
        f"{model.id} does not accept the parameter {quoted(name)}. It accepts: {known}.", param=name
    )


def output_content_type(job: ImageJob) -> str:
    return CONTENT_TYPES.get(job.params.get("output_format", "png"), "image/png")
