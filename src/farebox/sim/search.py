"""Web search APIs in four shapes, with made-up but deterministic results and the usual faults:

- Exa      `POST /exa/search`               (`x-api-key`; `numResults`, include/excludeDomains)
- Serper   `POST /serper/search`            (`X-API-KEY`; `q`, `num`; `site:`/`-site:` terms)
- Brave    `GET /brave/res/v1/web/search`   (`X-Subscription-Token`; `q`, `count`)
- SearXNG  `GET /searxng/search?format=json` (no key; always 10 results)

A query's results come from `DOMAINS` in order (filtered by the domains asked for), each with a
URL, a title and a text that repeat the query. Point a provider's base_url at `{sim}/exa`,
`{sim}/serper`, `{sim}/brave/res/v1` or `{sim}/searxng` (faults: `{sim}/sim/status=500/exa`).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from farebox.sim.admission import admit_call
from farebox.sim.openai_base import json_response, read_json_object

DOMAINS = (
    "en.wikipedia.org",
    "news.example.com",
    "docs.example.org",
    "blog.example.net",
    "forum.example.io",
    "data.example.gov",
    "shop.example.co",
    "papers.example.edu",
    "wiki.example.dev",
    "video.example.tv",
    "maps.example.app",
    "jobs.example.work",
)
SEARXNG_RESULTS = 10
_SITE = re.compile(r"(-?)site:([^\s()]+)")


def _split_sites(query: str) -> tuple[str, list[str], list[str]]:
    """The query without its site: terms, the included and the excluded domains."""
    include = [d for neg, d in _SITE.findall(query) if not neg]
    exclude = [d for neg, d in _SITE.findall(query) if neg]
    text = _SITE.sub("", query).replace("( OR )", "").replace("()", "")
    text = " ".join(w for w in text.split() if w not in ("OR", "(", ")"))
    return text.strip("() "), include, exclude


def _matches(domain: str, names: list[str]) -> bool:
    return any(domain == n or domain.endswith("." + n) for n in names)


def results_for(
    query: str, count: int, include: list[str], exclude: list[str]
) -> list[dict[str, Any]]:
    """Deterministic results: (url, title, text, date) for the first `count` allowed domains."""
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:60] or "query"
    out = []
    for i, domain in enumerate(DOMAINS, 1):
        if (include and not _matches(domain, include)) or _matches(domain, exclude):
            continue
        out.append(
            {
                "url": f"https://{domain}/{slug}-{i}",
                "title": f"{query} - result {i} on {domain}",
                "text": f"Simulated page {i} about {query}, as published by {domain}.",
                "date": f"2026-01-{i:02d}",
            }
        )
        if len(out) >= count:
            break
    return out


async def _admit(request: web.Request, body: dict[str, Any] | None) -> web.Response | None:
    return await admit_call(request, body, "search")


def _count(value: object, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return default
    try:
        count = int(value)
    except ValueError:
        return default
    return max(0, min(count, len(DOMAINS)))


async def exa(request: web.Request) -> web.StreamResponse:
    if not request.headers.get("x-api-key"):
        return web.json_response({"error": "x-api-key header is required"}, status=401)
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    denied = await _admit(request, body)
    if denied is not None:
        return denied
    query = body.get("query")
    if not isinstance(query, str) or not query:
        return web.json_response({"error": "query is required"}, status=400)
    items = results_for(
        query,
        _count(body.get("numResults"), 10),
        list(body.get("includeDomains") or []),
        list(body.get("excludeDomains") or []),
    )
    results = [
        {"title": r["title"], "url": r["url"], "publishedDate": r["date"], "text": r["text"]}
        for r in items
    ]
    return json_response({"requestId": "sim", "results": results})


async def serper(request: web.Request) -> web.StreamResponse:
    if not request.headers.get("X-API-KEY"):
        return web.json_response({"message": "Unauthorized."}, status=403)
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    denied = await _admit(request, body)
    if denied is not None:
        return denied
    text, include, exclude = _split_sites(str(body.get("q") or ""))
    items = results_for(text, _count(body.get("num"), 10), include, exclude)
    organic = [
        {
            "title": r["title"],
            "link": r["url"],
            "snippet": r["text"],
            "date": r["date"],
            "position": i,
        }
        for i, r in enumerate(items, 1)
    ]
    return json_response({"searchParameters": {"q": body.get("q")}, "organic": organic})


async def brave(request: web.Request) -> web.StreamResponse:
    if not request.headers.get("X-Subscription-Token"):
        return web.json_response({"type": "ErrorResponse", "error": {"code": "TOKEN"}}, status=422)
    denied = await _admit(request, None)
    if denied is not None:
        return denied
    text, include, exclude = _split_sites(request.query.get("q", ""))
    items = results_for(text, _count(request.query.get("count"), 20), include, exclude)
    results = [
        {"title": r["title"], "url": r["url"], "description": r["text"], "page_age": r["date"]}
        for r in items
    ]
    return json_response({"type": "search", "web": {"type": "search", "results": results}})


async def searxng(request: web.Request) -> web.StreamResponse:
    if request.query.get("format") != "json":
        return web.Response(status=403, text="json format is not enabled")
    denied = await _admit(request, None)
    if denied is not None:
        return denied
    text, include, exclude = _split_sites(request.query.get("q", ""))
    items = results_for(text, SEARXNG_RESULTS, include, exclude)
    results = [
        {"title": r["title"], "url": r["url"], "content": r["text"], "publishedDate": r["date"]}
        for r in items
    ]
    return json_response({"query": request.query.get("q"), "results": results})


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/exa/search", exa),
    web.post("/serper/search", serper),
    web.get("/brave/res/v1/web/search", brave, allow_head=False),
    web.get("/searxng/search", searxng, allow_head=False),
)
