"""A request kept in a front's own wire format, for upstreams that speak that format natively.

The chat pipeline carries every request as an OpenAI chat body (that is what it meters and what
fallback routes get). A front that translated from another format (the Anthropic Messages front)
also hands over its original request, keyed by provider kind: an upstream of that kind is sent
the original, losslessly (thinking signatures, cache_control, documents, betas), while the
OpenAI body still decides the money (its `max_tokens` is the capped one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A request body in an upstream's own format, and headers meant only for that upstream."""

    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    query: str = ""
    """The query string the client used (e.g. "beta=true"), passed on with the request."""


NativeRequests = Mapping[str, NativeRequest]
"""Original requests by provider kind ("anthropic")."""
