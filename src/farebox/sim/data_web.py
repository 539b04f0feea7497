"""Web research providers for the data endpoints (Exa's `/search` is in search.py):

- Exa (`{sim}/exa`, `x-api-key`): `POST /findSimilar`, `POST /contents` (per-URL statuses; a
  `.invalid` host comes back as an error status), `POST /answer`.
- Firecrawl (`{sim}/firecrawl/v2`, Bearer): `POST /scrape` (markdown and the formats asked),
  `POST /search` (`data.web`); a URL that is not http(s) is a 400.
- Serper (`{sim}/serper`, `X-API-KEY`): `POST /news`, `POST /shopping`; `num` above 100 is a 400.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from farebox.sim.data_common import bounded, empty, json_call, json_reply, number, slug
from farebox.sim.search import results_for


def exa_error(status: int, message: str) -> web.Response:
    return json_reply(
        {
            "requestId": "sim",
            "error": message,
            "tag": "INVALID_REQUEST_BODY" if status == 400 else "ERROR",
        },
        status,
    )


def firecrawl_error(status: int, message: str) -> web.Response:
    return json_reply({"success": False, "error": message}, status)


def serper_error(status: int, message: str) -> web.Response:
    return json_reply({"message": message, "statusCode": status}, status)


def _exa_result(item: dict[str, Any], contents: dict[str, Any]) -> dict[str, Any]:
    result = {
        "id": item["url"],
        "url": item["url"],
        "title": item["title"],
        "publishedDate": item["date"],
    }
    if contents.get("text"):
        result["text"] = item["text"]
    if contents.get("highlights"):
        result["highlights"] = [item["text"][:80]]
    return result


async def exa_find_similar(request: web.Request) -> web.StreamResponse:
    body = await json_call(request, "data:exa/findSimilar", exa_error, "x-api-key")
    if isinstance(body, web.Response):
        return body
    url = body.get("url")
    if not isinstance(url, str) or not urlsplit(url).hostname:
        return exa_error(400, "url must be a valid URL")
    count = bounded(body.get("numResults"), 10, 1, 100)
    if count is None:
        return exa_error(400, "numResults must be between 1 and 100")
    host = urlsplit(url).hostname or ""
    exclude = list(body.get("excludeDomains") or []) + (
        [host] if body.get("excludeSourceDomain") else []
    )
    items = (
        []
        if empty(url)
        else results_for(f"like {host}", count, list(body.get("includeDomains") or []), exclude)
    )
    raw_contents = body.get("contents")
    contents: dict[str, Any] = raw_contents if isinstance(raw_contents, dict) else {}
    return json_reply({"requestId": "sim", "results": [_exa_result(i, contents) for i in items]})


async def exa_contents(request: web.Request) -> web.StreamResponse:
    body = await json_call(request, "data:exa/contents", exa_error, "x-api-key")
    if isinstance(body, web.Response):
        return body
    urls = body.get("urls") or body.get("ids")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        return exa_error(400, "urls must be a non-empty list of URLs")
    results, statuses = [], []
    for url in urls:
        host = urlsplit(url).hostname or ""
        if host.endswith(".invalid"):
            statuses.append(
                {
                    "id": url,
                    "status": "error",
                    "error": {"tag": "CRAWL_NOT_FOUND", "httpStatusCode": 404},
                }
            )
            continue
        statuses.append({"id": url, "status": "success"})
        result = {"id": url, "url": url, "title": f"Page at {host}"}
        if body.get("text", True):
            result["text"] = f"Simulated text of {url}."
        results.append(result)
    return json_reply({"requestId": "sim", "results": results, "statuses": statuses})


async def exa_answer(request: web.Request) -> web.StreamResponse:
    body = await json_call(request, "data:exa/answer", exa_error, "x-api-key")
    if isinstance(body, web.Response):
        return body
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return exa_error(400, "query is required")
    if body.get("stream"):
        return exa_error(400, "stream is not supported by this simulator")
    if empty(query):
        return json_reply({"requestId": "sim", "answer": "", "citations": []})
    items = results_for(query, 3, [], [])
    citations = [
        {"id": i["url"], "url": i["url"], "title": i["title"], "publishedDate": i["date"]}
        for i in items
    ]
    if body.get("text"):
        for citation, item in zip(citations, items, strict=True):
            citation["text"] = item["text"]
    return json_reply(
        {"requestId": "sim", "answer": f"Simulated answer to: {query}", "citations": citations}
    )


async def firecrawl_scrape(request: web.Request) -> web.StreamResponse:
    body = await json_call(
        request, "data:firecrawl/scrape", firecrawl_error, "Authorization", "Bearer"
    )
    if isinstance(body, web.Response):
        return body
    url = body.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return firecrawl_error(400, "Bad Request: url must be an http(s) URL")
    formats = body.get("formats") or ["markdown"]
    host = urlsplit(url).hostname or ""
    title = f"{host} - {slug(urlsplit(url).path or 'home')}"
    data: dict[str, Any] = {
        "metadata": {
            "title": title,
            "sourceURL": url,
            "url": url,
            "statusCode": 404 if empty(url) else 200,
            "contentType": "text/html",
        }
    }
    text = "" if empty(url) else f"# {title}\n\nSimulated content of {url}.\n"
    if "markdown" in formats:
        data["markdown"] = text
    if "html" in formats or "rawHtml" in formats:
        data["html"] = f"<h1>{title}</h1><p>Simulated content.</p>" if text else ""
    if "links" in formats:
        data["links"] = [] if not text else [f"https://{host}/about", f"https://{host}/contact"]
    if "screenshot" in formats:
        data["screenshot"] = f"https://storage.example.com/screenshots/{number(url) % 10**8}.png"
    return json_reply({"success": True, "data": data})


async def firecrawl_search(request: web.Request) -> web.StreamResponse:
    body = await json_call(
        request, "data:firecrawl/search", firecrawl_error, "Authorization", "Bearer"
    )
    if isinstance(body, web.Response):
        return body
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return firecrawl_error(400, "Bad Request: query is required")
    limit = bounded(body.get("limit"), 5, 1, 100)
    if limit is None:
        return firecrawl_error(400, "Bad Request: limit must be between 1 and 100")
    items = [] if empty(query) else results_for(query, limit, [], [])
    web_results = [
        {"url": i["url"], "title": i["title"], "description": i["text"], "position": n}
        for n, i in enumerate(items, 1)
    ]
    return json_reply({"success": True, "data": {"web": web_results}})


async def _serper_call(request: web.Request, kind: str) -> tuple[str, int] | web.Response:
    """(q, num) of a Serper search, or its error."""
    body = await json_call(request, f"data:serper/{kind}", serper_error, "X-API-KEY")
    if isinstance(body, web.Response):
        return body
    q = body.get("q")
    if not isinstance(q, str) or not q.strip():
        return serper_error(400, "Query (q) is required.")
    num = bounded(body.get("num"), 10, 1, 100)
    if num is None:
        return serper_error(400, "num must be between 1 and 100.")
    return q, num


async def serper_news(request: web.Request) -> web.StreamResponse:
    started = await _serper_call(request, "news")
    if isinstance(started, web.Response):
        return started
    q, num = started
    items = [] if empty(q) else results_for(q, num, [], [])
    news = [
        {
            "title": i["title"],
            "link": i["url"],
            "snippet": i["text"],
            "date": f"{n} hours ago",
            "source": i["url"].split("/")[2],
            "imageUrl": f"https://img.example.com/{n}.jpg",
            "position": n,
        }
        for n, i in enumerate(items, 1)
    ]
    return json_reply(
        {
            "searchParameters": {"q": q, "type": "news", "engine": "google"},
            "news": news,
            "credits": 1,
        }
    )


async def serper_shopping(request: web.Request) -> web.StreamResponse:
    started = await _serper_call(request, "shopping")
    if isinstance(started, web.Response):
        return started
    q, num = started
    products = (
        []
        if empty(q)
        else [
            {
                "title": f"{q.title()} model {n}",
                "source": ("Example Store", "Shop Co", "Market Inc")[n % 3],
                "link": f"https://shop.example.co/p/{slug(q)}-{n}",
                "price": f"${19 + number(q, n) % 200}.99",
                "delivery": "Free delivery",
                "imageUrl": f"https://img.example.com/p{n}.jpg",
                "rating": 4.0 + (n % 10) / 10,
                "ratingCount": 10 * n,
                "productId": str(number(q, n) % 10**12),
                "position": n,
            }
            for n in range(1, num + 1)
        ]
    )
    return json_reply(
        {
            "searchParameters": {"q": q, "type": "shopping", "engine": "google"},
            "shopping": products,
            "credits": 2,
        }
    )


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/exa/findSimilar", exa_find_similar),
    web.post("/exa/contents", exa_contents),
    web.post("/exa/answer", exa_answer),
    web.post("/firecrawl/v2/scrape", firecrawl_scrape),
    web.post("/firecrawl/v2/search", firecrawl_search),
    web.post("/serper/news", serper_news),
    web.post("/serper/shopping", serper_shopping),
)
