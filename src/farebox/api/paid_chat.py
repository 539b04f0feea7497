"""Chat paid per request: `/v1/chat/completions` and `/v1/messages` without an API key.

A keyless chat request is validated, then priced at its worst case (the prompt, an addon's
most, and the whole output cap: `max_tokens`, else FAREBOX_DEFAULT_MAX_TOKENS), at most
FAREBOX_PAY402_CHAT_MAX_USD (the cap is then lowered to what that pays for). It answers 402
with an L402 challenge and, with trusted mints, a Cashu payment request; the Payment scheme's
charge intent is not offered (it pays an exact price once). Paid, it runs through the same
ChatService as a keyed request, with the credential's account as the Buyer: the price is held
at once and the upstream is sent no cap beyond the hold (chat/caps.py). What it does not use
stays on the L402 token for later chat requests on the same endpoint (pay402/config.py: 30
days), which hold what is left, up to their own price, and lower their cap to it as an account
does; or it comes back to a Cashu payer as change.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from farebox.anthropic.service import MessagesService
from farebox.api.pay402 import CredentialPurchase, Purchase, purchase_for
from farebox.api.services import Services
from farebox.api.streaming import EventStreamResponse
from farebox.chat.caps import affordable_cap
from farebox.chat.request import ChatCall, parse_chat
from farebox.errors import InvalidRequest
from farebox.money import format_usd
from farebox.pay402.types import Offer

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def chat_offer(services: Services, call: ChatCall, endpoint: str) -> Offer:
    """The worst case of a validated call, under the operator's ceiling."""
    quote = services.chat.quote(call)
    ceiling = services.pay402.config.chat_max_nanos
    if quote.minimum > ceiling:
        raise InvalidRequest(
            f"This request's prompt alone costs ${format_usd(quote.minimum)}, more than the "
            f"${format_usd(ceiling)} a chat request paid per request may cost here. Send an "
            "API key (POST /accounts/create) or a shorter prompt.",
            param="messages",
        )
    price = min(quote.worst_case, ceiling)
    cap = affordable_cap(call.model.price, price - quote.input_nanos, quote.asked, call.n)
    choices = f" × {call.n} choices" if call.n > 1 else ""
    what = (
        f"POST {endpoint} ({call.model.id}: {call.prompt_tokens} prompt tokens and up to {cap} "
        f"output tokens{choices})"
    )
    return Offer(endpoint, price, what, worst_case=True)


async def _opened(purchase: Purchase) -> None:
    if isinstance(purchase, CredentialPurchase):
        await purchase.opened()


async def keyless_chat(
    services: Services, raw: bytes, scope: Scope, receive: Receive, send: Send
) -> None:
    """POST /v1/chat/completions with no API key (api/chat.py hands it over)."""
    call = parse_chat(raw, services.catalog)
    request = Request(scope, receive)
    async with await purchase_for(
        services, request, None, chat_offer(services, call, CHAT)
    ) as paid:
        result = await services.chat.run(paid.buyer, call)
        extra = {"x-farebox-request-id": result.request_id}
        if result.stream is not None:
            await _opened(paid)
            headers = {**SSE_HEADERS, **paid.headers, **extra}
            await EventStreamResponse(paid.stream(result.stream), headers)(scope, receive, send)
            return
        assert result.body is not None and result.cost_nanos is not None
        headers = {**await paid.settled(), **extra, "x-farebox-cost": format_usd(result.cost_nanos)}
    response = Response(result.body, media_type="application/json", headers=headers)
    await response(scope, receive, send)


async def keyless_messages(
    services: Services, messages: MessagesService, request: Request, raw: bytes
) -> Response:
    """POST /v1/messages with no API key (api/messages.py hands it over)."""
    prepared = messages.prepare(raw, request.headers, request.url.query)
    offer = chat_offer(services, prepared.call, MESSAGES)
    async with await purchase_for(services, request, None, offer) as paid:
        result = await messages.run(paid.buyer, prepared)
        ids = {"x-farebox-request-id": result.request_id, "request-id": result.request_id}
        if result.stream is not None:
            await _opened(paid)
            return StreamingResponse(
                paid.stream(result.stream),
                media_type="text/event-stream",
                headers={**SSE_HEADERS, **paid.headers, **ids},
            )
        assert result.body is not None and result.cost_nanos is not None
        headers = {**await paid.settled(), **ids, "x-farebox-cost": format_usd(result.cost_nanos)}
    return Response(result.body, media_type="application/json", headers=headers)
