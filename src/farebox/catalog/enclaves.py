"""Catalog fields of enclave (`ehbp`) providers and of the private models routed to them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import parse
from .model import ProviderConfig, Route
from .parse import JsonObject, Where

EHBP_KIND = "ehbp"
USAGE_REPORTS = ("tinfoil",)
PROVIDER_KEYS = ("usage_report", "attestation_url")
MODEL_KEYS = ("image_tokens",)
MAX_IMAGE_TOKENS = 1_000_000


def provider_fields(
    obj: JsonObject, kind: str, base_url: str, where: Where
) -> tuple[str | None, str | None]:
    """`usage_report` and `attestation_url` of an ehbp provider (refused on other kinds)."""
    if kind != EHBP_KIND:
        for key in PROVIDER_KEYS:
            if key in obj:
                raise where.error(f"only an {EHBP_KIND!r} provider has this field", key)
        return None, None
    report = parse.string(obj.get("usage_report", USAGE_REPORTS[0]), where, "usage_report")
    if report not in USAGE_REPORTS:
        raise where.error(
            f"unknown convention {report!r} (known: {', '.join(USAGE_REPORTS)})", "usage_report"
        )
    url = parse.string(
        obj.get("attestation_url", base_url + "/attestation"), where, "attestation_url"
    )
    if not url.startswith(("http://", "https://")):
        raise where.error(f"must be an http:// or https:// URL, got {url!r}", "attestation_url")
    return report, url


def model_fields(
    obj: JsonObject,
    model_type: str,
    routes: tuple[Route, ...],
    providers: Mapping[str, ProviderConfig],
    where: Where,
) -> dict[str, Any]:
    """`private` (routed to an enclave) and `image_tokens`. A private model is a chat model with
    exactly one route: its requests are sealed to one enclave's key, so no other route could
    open them."""
    private = any(providers[r.provider].kind == EHBP_KIND for r in routes)
    image_tokens = None
    if "image_tokens" in obj:
        image_tokens = parse.integer(obj["image_tokens"], where, "image_tokens", minimum=1)
        if image_tokens > MAX_IMAGE_TOKENS:
            raise where.error(f"must be at most {MAX_IMAGE_TOKENS}", "image_tokens")
    if not private:
        return {"image_tokens": image_tokens} if image_tokens is not None else {}
    if model_type != "chat":
        raise where.error("an enclave (ehbp) route serves chat models only", "type")
    if len(routes) != 1:
        raise where.error(
            "a private model has exactly one route: a request sealed to one enclave's key "
            "cannot fall back to another",
            "routes",
        )
    return {"private": True, "image_tokens": image_tokens}
