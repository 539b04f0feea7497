"""Social data providers:

- Reddit (`{sim}/reddit`): `POST /api/v1/access_token` (HTTP Basic client id and secret,
  `grant_type=client_credentials`) issues `sim-reddit-N` bearer tokens; `GET /r/{sr}/search`
  and `GET /comments/{article}` want one, answer Reddit's `Listing` shapes, and 404 for a
  subreddit named `doesnotexist` or an article id `0`.
- X API v2 (`{sim}/x/2`, Bearer): `GET /users/by/username/{u}` (a malformed name is a 400; a
  name starting `nobody` is X's 200 with `errors`), `GET /users/{id}/tweets` (max_results 5-100),
  `GET /tweets/search/recent` (max_results 10-100), `GET /tweets/{id}`.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp import web

from farebox.sim.admission import admit_call
from farebox.sim.data_common import bounded, empty, has_header, json_reply, number, person, slug
from farebox.sim.state import SIM_STATE

_TOKEN_PREFIX = "sim-reddit-"
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")


def reddit_error(status: int, message: str) -> web.Response:
    return json_reply({"message": message, "error": status}, status)


def x_error(status: int, message: str) -> web.Response:
    if status == 401:
        return json_reply(
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
            401,
        )
    return json_reply(
        {
            "errors": [{"message": message}],
            "title": "Invalid Request" if status == 400 else "Error",
            "detail": message,
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        status,
    )


async def reddit_token(request: web.Request) -> web.StreamResponse:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        client_id = secret = ""
    form = await request.post()
    if scheme.lower() != "basic" or not client_id or not secret:
        return reddit_error(401, "Unauthorized")
    if form.get("grant_type") != "client_credentials":
        return json_reply({"error": "unsupported_grant_type"}, 400)
    denied = await admit_call(request, None, "data:reddit/token", reddit_error)
    if denied is not None:
        return denied
    token = f"{_TOKEN_PREFIX}{request.app[SIM_STATE].next_id()}"
    return json_reply(
        {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}
    )


async def _reddit_start(request: web.Request, endpoint: str) -> web.Response | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(_TOKEN_PREFIX):
        return reddit_error(401, "Unauthorized")
    if "User-Agent" not in request.headers:
        return reddit_error(429, "Too Many Requests")
    return await admit_call(request, None, endpoint, reddit_error)


def _post(query: str, subreddit: str, n: int) -> dict[str, Any]:
    post_id = f"{number(query, subreddit, n) % 36**6:x}"[:7]
    author = person(query, n)
    return {
        "kind": "t3",
        "data": {
            "id": post_id,
            "name": f"t3_{post_id}",
            "title": f"{query} - discussion {n}",
            "selftext": f"Simulated post about {query}.",
            "author": slug(author["name"], 20).replace("-", "_"),
            "subreddit": subreddit,
            "score": 10 + number(post_id) % 900,
            "num_comments": 3 + n,
            "permalink": f"/r/{subreddit}/comments/{post_id}/{slug(query, 30)}/",
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{post_id}/{slug(query, 30)}/",
            "created_utc": 1767225600.0 + n * 3600,
        },
    }


def _listing(children: list[dict[str, Any]]) -> dict[str, Any]:
    after = children[-1]["data"].get("name") if children else None
    return {
        "kind": "Listing",
        "data": {"after": after, "dist": len(children), "children": children, "before": None},
    }


async def reddit_search(request: web.Request) -> web.StreamResponse:
    denied = await _reddit_start(request, "data:reddit/search")
    if denied is not None:
        return denied
    subreddit = request.match_info["subreddit"]
    if subreddit == "doesnotexist":
        return reddit_error(404, "Not Found")
    query = request.query.get("q", "")
    limit = bounded(request.query.get("limit"), 25, 1, 100)
    if not query or limit is None:
        return reddit_error(400, "q is required and limit must be 1 to 100")
    name = "all" if subreddit == "all" else subreddit
    posts = [] if empty(query) else [_post(query, name, n) for n in range(1, min(limit, 5) + 1)]
    return json_reply(_listing(posts))


async def reddit_comments(request: web.Request) -> web.StreamResponse:
    denied = await _reddit_start(request, "data:reddit/comments")
    if denied is not None:
        return denied
    article = request.match_info["article"]
    if article == "0":
        return reddit_error(404, "Not Found")
    post = _post(article, "programming", 0)
    post["data"]["id"] = article
    post["data"]["name"] = f"t3_{article}"
    comments = [
        {
            "kind": "t1",
            "data": {
                "id": f"c{n}{article}"[:8],
                "body": f"Simulated comment {n}.",
                "author": f"user{n}",
                "score": 5 * n,
                "created_utc": 1767229200.0 + n * 60,
                "replies": "",
            },
        }
        for n in range(1, 4)
    ]
    return json_reply([_listing([post]), _listing(comments)])


async def _x_start(request: web.Request, endpoint: str) -> web.Response | None:
    if not has_header(request, "Authorization", "Bearer"):
        return x_error(401, "Unauthorized")
    return await admit_call(request, None, endpoint, x_error)


def _tweet(seed: str, n: int, author_id: str) -> dict[str, Any]:
    return {
        "id": str(1800000000000000000 + number(seed, n) % 10**17),
        "text": f"Simulated post {n} about {seed}",
        "author_id": author_id,
        "created_at": f"2026-12-0{1 + n % 5}T12:00:00.000Z",
        "lang": "en",
        "public_metrics": {
            "retweet_count": n,
            "reply_count": 2 * n,
            "like_count": 10 * n,
            "quote_count": 0,
        },
    }


def _meta(tweets: list[dict[str, Any]]) -> dict[str, Any]:
    if not tweets:
        return {"result_count": 0}
    return {
        "result_count": len(tweets),
        "newest_id": tweets[0]["id"],
        "oldest_id": tweets[-1]["id"],
    }


async def x_user(request: web.Request) -> web.StreamResponse:
    denied = await _x_start(request, "data:x/user")
    if denied is not None:
        return denied
    username = request.match_info["username"]
    if not _USERNAME.fullmatch(username):
        return x_error(
            400,
            f"The `username` query parameter value [{username[:30]}] does not match ^[A-Za-z0-9_]{{1,15}}$",
        )
    if username.lower().startswith("nobody"):
        return json_reply(
            {
                "errors": [
                    {
                        "value": username,
                        "detail": f"Could not find user with username: [{username}].",
                        "title": "Not Found Error",
                        "resource_type": "user",
                        "parameter": "username",
                        "resource_id": username,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                ]
            }
        )
    p = person(username)
    return json_reply(
        {
            "data": {
                "id": str(10**15 + number(username) % 10**15),
                "name": p["name"],
                "username": username,
                "created_at": "2012-05-01T00:00:00.000Z",
                "description": f"{p['title']} in {p['city']}",
                "location": f"{p['city']}, {p['state']}",
                "verified": False,
                "public_metrics": {
                    "followers_count": 1200,
                    "following_count": 300,
                    "tweet_count": 4500,
                    "listed_count": 12,
                },
            }
        }
    )


async def x_user_tweets(request: web.Request) -> web.StreamResponse:
    denied = await _x_start(request, "data:x/user-posts")
    if denied is not None:
        return denied
    user_id = request.match_info["user_id"]
    count = bounded(request.query.get("max_results"), 10, 5, 100)
    if not user_id.isdigit() or count is None:
        return x_error(400, "The `max_results` query parameter value must be between 5 and 100")
    tweets = [_tweet(user_id, n, user_id) for n in range(1, count + 1)]
    return json_reply({"data": tweets, "meta": _meta(tweets)})


async def x_search(request: web.Request) -> web.StreamResponse:
    denied = await _x_start(request, "data:x/search")
    if denied is not None:
        return denied
    query = request.query.get("query", "")
    count = bounded(request.query.get("max_results"), 10, 10, 100)
    if not query or count is None:
        return x_error(400, "The `max_results` query parameter value must be between 10 and 100")
    if empty(query):
        return json_reply({"meta": {"result_count": 0}})
    tweets = [_tweet(query, n, str(10**15 + n)) for n in range(1, count + 1)]
    return json_reply({"data": tweets, "meta": _meta(tweets)})


async def x_tweet(request: web.Request) -> web.StreamResponse:
    denied = await _x_start(request, "data:x/post")
    if denied is not None:
        return denied
    tweet_id = request.match_info["tweet_id"]
    if not tweet_id.isdigit():
        return x_error(400, "The `id` query parameter value must be a number")
    tweet = _tweet(tweet_id, 1, str(10**15 + 7))
    tweet["id"] = tweet_id
    return json_reply({"data": tweet})


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/reddit/api/v1/access_token", reddit_token),
    web.get("/reddit/r/{subreddit}/search", reddit_search, allow_head=False),
    web.get("/reddit/comments/{article}", reddit_comments, allow_head=False),
    web.get("/x/2/users/by/username/{username}", x_user, allow_head=False),
    web.get("/x/2/users/{user_id}/tweets", x_user_tweets, allow_head=False),
    web.get("/x/2/tweets/search/recent", x_search, allow_head=False),
    web.get("/x/2/tweets/{tweet_id}", x_tweet, allow_head=False),
)
