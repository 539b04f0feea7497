"""The playground: chat with any chat model, streamed, each reply's cost shown and the balance
moving. The page posts to a session-authenticated endpoint (CSRF header required); the server
bills the account's playground key (playground_key.py) through the same ChatService as
`POST /v1/chat/completions`, so no API key ever reaches the page's script."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.chat import SSE_HEADERS
from farebox.api.requests import read_body
from farebox.api.responses import error_response
from farebox.api.streaming import EventStreamResponse
from farebox.dashboard.playground_key import playground_key
from farebox.dashboard.sessions import CUSTOMER
from farebox.dashboard.web import SECURITY_HEADERS, FormRejected, Web
from farebox.errors import FareboxError, InvalidRequest, Unauthorized
from farebox.inputs import parse_json_object

MAX_MESSAGES = 40
MAX_CHARS = 20_000  # per message
ROLES = ("user", "assistant")
DEFAULT_MODEL = "gpt-5-mini"


def playground_body(body: dict[str, object]) -> bytes:
    """The chat request the playground may send: a model and plain-text turns, streamed."""
    model = body.get("model")
    if not isinstance(model, str) or not 0 < len(model) <= 200:
        raise InvalidRequest("Pick a model.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not 0 < len(messages) <= MAX_MESSAGES:
        raise InvalidRequest(
            f"Send 1 to {MAX_MESSAGES} messages (start a new chat to go on).", param="messages"
        )
    turns = []
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidRequest("Each message is {role, content}.", param="messages")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str) or len(content) > MAX_CHARS:
            raise InvalidRequest(
                f"Each message needs a role (user or assistant) and text of at most {MAX_CHARS} "
                "characters.",
                param="messages",
            )
        turns.append({"role": role, "content": content})
    request = {
        "model": model,
        "messages": turns,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return orjson.dumps(request)


def routes(web: Web) -> list[Route]:
    services = web.services

    @web.page(CUSTOMER)
    async def page(request: Request) -> Response:
        session = await web.require(request, CUSTOMER)
        assert session.account_id is not None
        key = await playground_key(services.keys, session.account_id, time.time())
        await services.ledger.flush()
        models = [m for m in services.catalog.list("chat") if not m.private]
        context = {
            **web.frame(session, "/dashboard/playground", "Playground"),
            "balance": await services.ledger.balance(session.account_id),
            "models": models,
            "default_model": DEFAULT_MODEL if any(m.id == DEFAULT_MODEL for m in models) else "",
            "key_name": key.name,
            "max_chars": MAX_CHARS,
        }
        return web.render("playground.html", context)

    async def chat(request: Request) -> Response:
        """JSON errors in OpenAI's envelope (the page's script reads them); SSE on success."""
        try:
            session = await web.session(request, CUSTOMER)
            if session is None or session.account_id is None:
                raise Unauthorized("Your session has ended: sign in again.")
            try:
                web.check_header_csrf(request, session)
            except FormRejected as exc:
                refused = FareboxError("Refused: reload the page and try again.")
                refused.status = 403
                raise refused from exc
            raw = playground_body(
                parse_json_object(await read_body(request, services.settings.max_body_bytes))
            )
            key = await playground_key(services.keys, session.account_id, time.time())
            result = await services.chat.complete(key, raw, source="dashboard")
        except FareboxError as exc:
            response = error_response(exc)
            response.headers.update(SECURITY_HEADERS)
            return response
        assert result.stream is not None
        headers = {**SSE_HEADERS, **SECURITY_HEADERS, "x-farebox-request-id": result.request_id}
        return EventStreamResponse(result.stream, headers)  # type: ignore[return-value]

    return [
        Route("/dashboard/playground", page, methods=["GET"]),
        Route("/dashboard/playground/chat", chat, methods=["POST"]),
    ]
