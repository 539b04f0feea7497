"""What the simulated data providers share: where each is mounted, made-up but deterministic
people, places and companies derived from the request, and the empty-result trigger.

A request whose main text (query, name, domain, handle, email, ...) contains `noresults`
gets the provider's empty answer (still a 200: the provider charges for it). Faults come from
the URL prefix as everywhere in the simulator (`{sim}/sim/status=503/apollo/api/v1`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from farebox.sim.admission import ErrorReply, admit_call
from farebox.sim.openai_base import read_json_object

EMPTY_TRIGGER = "noresults"

SIM_DATA_BASES: Mapping[str, str] = {
    "google-maps": "/google-maps/v1",
    "apollo": "/apollo/api/v1",
    "exa": "/exa",
    "firecrawl": "/firecrawl/v2",
    "clado": "/clado/api",
    "serper": "/serper",
    "reddit": "/reddit",
    "whitepages": "/whitepages",
    "hunter": "/hunter/v2",
    "influencers-club": "/influencers/public/v1",
    "x": "/x/2",
}
"""Where each shipped data upstream is answered, under the simulator's URL."""

SIM_TOKEN_PATHS: Mapping[str, str] = {"reddit": "/reddit/api/v1/access_token"}
"""OAuth token endpoints, for upstreams that use one."""

FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Tim")
LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie")
CITIES = (
    ("Seattle", "WA", 47.6062, -122.3321),
    ("Austin", "TX", 30.2672, -97.7431),
    ("Denver", "CO", 39.7392, -104.9903),
    ("Portland", "OR", 45.5152, -122.6784),
    ("Boston", "MA", 42.3601, -71.0589),
)
TITLES = ("Software Engineer", "CTO", "VP Engineering", "Product Manager", "Data Scientist")
INDUSTRIES = ("computer software", "financial services", "retail", "biotechnology", "media")


def empty(*texts: object) -> bool:
    """True when any of the request's texts asks for the empty answer."""
    return any(isinstance(t, str) and EMPTY_TRIGGER in t.lower() for t in texts)


def number(*parts: object) -> int:
    """A stable number from the request's values (the same request, the same answer)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit] or "item"


def person(*parts: object) -> dict[str, Any]:
    """A made-up person: names, title, city."""
    n = number(*parts)
    city, state, lat, lng = CITIES[n % len(CITIES)]
    first, last = FIRST[n % len(FIRST)], LAST[(n >> 8) % len(LAST)]
    return {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "title": TITLES[(n >> 16) % len(TITLES)],
        "city": city,
        "state": state,
        "lat": lat,
        "lng": lng,
        "id": f"{n:016x}"[:24],
    }


def company(*parts: object) -> dict[str, Any]:
    """A made-up company: name, domain, size, industry."""
    n = number(*parts)
    word = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay")[n % 6]
    city, state, _, _ = CITIES[(n >> 4) % len(CITIES)]
    return {
        "id": f"{n:024x}"[:24],
        "name": f"{word} {('Labs', 'Systems', 'Data', 'Works')[(n >> 8) % 4]}",
        "domain": f"{word.lower()}{n % 97}.example.com",
        "employees": 10 + n % 5000,
        "industry": INDUSTRIES[(n >> 12) % len(INDUSTRIES)],
        "city": city,
        "state": state,
    }


def bounded(value: object, default: int, low: int, high: int) -> int | None:
    """An integer option in [low, high] (default when absent); None when out of range."""
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def has_header(request: web.Request, name: str, scheme: str = "") -> bool:
    """Whether the request carries a non-empty credential in `name` (after `scheme`)."""
    value = request.headers.get(name, "")
    if scheme:
        given, _, value = value.partition(" ")
        if given.lower() != scheme.lower():
            return False
    return bool(value.strip())


def json_reply(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


async def json_call(
    request: web.Request, endpoint: str, reply: ErrorReply, header: str, scheme: str = ""
) -> dict[str, Any] | web.Response:
    """The JSON body of a provider call that carries its key in `header`, after the faults;
    or the provider's error to answer."""
    if not has_header(request, header, scheme):
        return reply(401, "Unauthorized: missing or invalid API key.")
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return reply(400, "The request body must be a JSON object.")
    denied = await admit_call(request, body, endpoint, reply)
    return denied if denied is not None else body


async def query_call(
    request: web.Request, endpoint: str, reply: ErrorReply, header: str, scheme: str = ""
) -> dict[str, str] | web.Response:
    """The query values of a GET provider call, as `json_call` does for bodies."""
    if not has_header(request, header, scheme):
        return reply(401, "Unauthorized: missing or invalid API key.")
    denied = await admit_call(request, None, endpoint, reply)
    return denied if denied is not None else dict(request.query)


def page_of(total: int, page: int, per_page: int) -> int:
    """How many of `total` results page `page` (1-based) of `per_page` holds."""
    return max(0, min(per_page, total - (page - 1) * per_page))
