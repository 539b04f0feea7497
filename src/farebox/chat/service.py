"""One paid chat completion: quote, hold, call the upstream, meter, settle (DESIGN §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from farebox.billing.charge import Charge, charge_ids
from farebox.billing.leases import LeaseKeeper
from farebox.billing.losses import LossBook, loss_of
from farebox.billing.pricing import TokenUsage, output_cost, quote_input_cost, usage_cost
from farebox.billing.tokens import count_text, encoder
from farebox.catalog.model import Catalog, CatalogModel
from farebox.chat.addons import RequestAddon
from farebox.chat.caps import affordable_cap, asked_tokens, metered_past_hold, send_cap
from farebox.chat.request import ChatCall, parse_chat
from farebox.chat.stream import StreamRelay
from farebox.chat.usage import usage_from_upstream, usage_payload
from farebox.errors import UpstreamError
from farebox.keys.store import ApiKey, KeyStore
from farebox.ledger.service import Ledger
from farebox.ledger.sweep import encode_recovery
from farebox.ledger.types import KeyBudget, QueryRecord
from farebox.limits.gate import KeyGate
from farebox.modalities.paid import Buyer
from farebox.net.drain import Drain
from farebox.providers.base import UpstreamFailure
from farebox.providers.router import Router
from farebox.records import record


@dataclass(slots=True)
class ChatResult:
    """Either a whole JSON body with its cost, or a stream of SSE bytes."""

    body: bytes | None = None
    cost_nanos: int | None = None
    stream: AsyncIterator[bytes] | None = None
    request_id: str = ""


@record
class ChatQuote:
    """What a validated call may cost: its input (with an addon's most), the least a hold must
    cover (input and one output token per choice) and the worst case (the whole output cap)."""

    input_nanos: int
    minimum: int
    worst_case: int
    asked: int  # output tokens per choice the call asks for (its cap before any lowering)


class ChatService:
    def __init__(
        self,
        catalog: Catalog,
        router: Router,
        ledger: Ledger,
        keys: KeyStore,
        hold_timeout_s: float,
        stream_increment_tokens: int,
        leases: LeaseKeeper | None = None,
        *,
        default_max_tokens: int,
        losses: LossBook | None = None,
        drain: Drain | None = None,
        gate: KeyGate | None = None,
    ) -> None:
        self.catalog = catalog
        self.drain = drain  # streams still running at the drain deadline are cut (net/drain.py)
        self.router = router
        self.ledger = ledger
        self.keys = keys
        self.hold_timeout_s = hold_timeout_s
        self.stream_increment_tokens = stream_increment_tokens
        self.default_max_tokens = default_max_tokens  # FAREBOX_DEFAULT_MAX_TOKENS
        self.losses = losses
        self.gate = gate  # keys' model scopes and rate limits (limits/gate.py)
        self._request_ids = charge_ids()
        self.leases = leases
        # Makes the addon a call needs (the web plugin's search), if any; set by app.py.
        self.addons: Callable[[ChatCall], RequestAddon | None] | None = None

    def _charge(self, who: ApiKey | Buyer, model: CatalogModel) -> Charge:
        """The Charge of one request: for a key (its budget, reloaded if its limits changed),
        or for a Buyer (modalities/paid.py: a key's, or a paid credential's account)."""
        key = who if isinstance(who, ApiKey) else who.key
        reload = None
        if key is not None:

            async def reload_key() -> KeyBudget:
                fresh = await self.keys.reload(key.id, key.account_id)
                return fresh.budget()

            reload = reload_key
        return Charge(
            ledger=self.ledger,
            request_id=self._request_ids.next(),
            leases=self.leases,
            account_id=who.account_id,
            key=key.budget() if key is not None else None,
            hold_timeout_s=self.hold_timeout_s,
            reload_key=reload,
            admission=(self.gate.admission(key, model) if self.gate is not None else None),
        )

    def quote(self, call: ChatCall) -> ChatQuote:
        """Price a validated call before anything is held (and attach its addon, if any)."""
        prices = call.model.price
        if call.addon is None and self.addons is not None:
            call.addon = self.addons(call)
        input_nanos = quote_input_cost(prices, call.prompt_tokens)
        if call.addon is not None:
            input_nanos += call.addon.max_nanos  # held with the prompt, before anything runs
        asked = asked_tokens(call, self.default_max_tokens)
        return ChatQuote(
            input_nanos=input_nanos,
            minimum=input_nanos + output_cost(prices, call.n),
            worst_case=input_nanos + output_cost(prices, asked * call.n),
            asked=asked,
        )

    async def complete(self, key: ApiKey, raw: bytes, source: str = "api") -> ChatResult:
        return await self.run(key, parse_chat(raw, self.catalog), source)

    async def run(self, who: ApiKey | Buyer, call: ChatCall, source: str = "api") -> ChatResult:
        """Bill and run a validated call (other fronts translate into a ChatCall and come here).
        `who` pays: an API key, or a Buyer (a 402-paid credential's account, whose `limit` is
        the most the request was offered at; the cap is lowered to what the hold pays for)."""
        prices = call.model.price
        quote = self.quote(call)
        input_nanos, minimum, asked = quote.input_nanos, quote.minimum, quote.asked
        buyer = who if isinstance(who, Buyer) else None
        query = QueryRecord(
            model=call.model.id,
            input_count=call.prompt_tokens,
            output_count=0,
            query_type="chat",
            query_source=buyer.source if buyer is not None else source,
            is_online=call.web is not None or call.addon is not None,  # the addon: a search
            is_free_model=call.model.is_free,
        )
        charge = self._charge(who, call.model)

        async def hold(want: int, least: int) -> int:
            if buyer is not None:
                return await buyer.hold(charge, want, least)
            return await charge.open(want, least)

        if buyer is not None and buyer.limit is not None:
            # Paid per request: at most the price it was offered at, held at once (never a first
            # increment); a paid credential's remainder may hold less, and the cap is lowered to
            # what is held, as for an account.
            held = await hold(min(quote.worst_case, buyer.limit), minimum)
            cap = affordable_cap(prices, held - input_nanos, asked, call.n)
        elif metered_past_hold(call):
            # Every output token shows in the stream: hold a first increment, send the whole cap,
            # and let the meter extend the hold (or cut the stream) as the output arrives.
            first = min(self.stream_increment_tokens, asked * call.n)
            await hold(input_nanos + output_cost(prices, first), minimum)
            cap = asked
        else:
            # Output the meter may not see, or a reply that cannot be cut short: hold the whole
            # cap, lowered to what the customer can pay for rather than refused.
            held = await hold(quote.worst_case, minimum)
            cap = affordable_cap(prices, held - input_nanos, asked, call.n)
        send_cap(call, cap)
        if call.stream:
            return await self._stream(call, charge, input_nanos, cap * call.n, query)
        return await self._complete(call, charge, query)

    async def _complete(self, call: ChatCall, charge: Charge, query: QueryRecord) -> ChatResult:
        prices = call.model.price
        try:
            if call.addon is not None:
                await call.addon.prepare(call)
            reply = await self.router.chat(call.model, call.body, stream=False, native=call.native)
            raw = await reply.read()
        except UpstreamFailure as failure:
            charge.void()
            raise UpstreamError(f"{failure.message}. Nothing was charged.") from failure
        except BaseException:
            charge.void()
            raise
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            charge.void()
            raise UpstreamError(
                "The upstream provider sent an unreadable response. Nothing was charged."
            ) from exc
        reported = body.get("usage")
        if call.addon is not None:
            call.addon.reply_seen(reported if isinstance(reported, dict) else None)
        usage = usage_from_upstream(reported) or TokenUsage(
            prompt_tokens=call.prompt_tokens,
            completion_tokens=_completion_tokens(call, body),
        )
        worth = usage_cost(prices, usage) + call.extra_cost
        record = QueryRecord(
            model=query.model,
            input_count=usage.prompt_tokens,
            output_count=usage.completion_tokens,
            query_type=query.query_type,
            query_source=query.query_source,
            is_online=query.is_online,
            is_free_model=query.is_free_model,
        )
        if worth > charge.held:  # the upstream counted more than we held for: hold the rest
            short = worth - charge.held
            await charge.extend(short, short, worth, encode_recovery(record))
        cost = min(worth, charge.held)
        charge.settle(cost, record)
        if worth > cost and self.losses is not None:
            await self.losses.record(loss_of(charge, call.model, usage, worth, cost))
        body["model"] = call.model.id  # the catalog id asked for, not the upstream's model id
        body["usage"] = usage_payload(usage, cost, reported if isinstance(reported, dict) else None)
        if call.addon is not None:
            call.addon.decorate(body)
        return ChatResult(body=orjson.dumps(body), cost_nanos=cost, request_id=charge.request_id)

    async def _stream(
        self, call: ChatCall, charge: Charge, input_nanos: int, max_total: int, query: QueryRecord
    ) -> ChatResult:
        try:
            if call.addon is not None:
                await call.addon.prepare(call)
            reply = await self.router.chat(call.model, call.body, stream=True, native=call.native)
        except BaseException:
            charge.void()
            raise
        relay = StreamRelay(
            call,
            charge,
            reply,
            input_nanos,
            self.stream_increment_tokens,
            query,
            max_total=max_total,
            losses=self.losses,
            drain=self.drain,
        )
        events = relay.events()
        if call.addon is not None:
            events = call.addon.wrap(events)
        return ChatResult(stream=events, request_id=charge.request_id)


def _completion_tokens(call: ChatCall, body: dict[str, Any]) -> int:
    """Count the answer ourselves when the upstream reports no usage."""
    enc = encoder(call.model.tokenizer)
    total = 0
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            total += count_text(enc, content)
        for tool_call in message.get("tool_calls") or ():
            fn = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(fn, dict):
                total += count_text(enc, str(fn.get("name", "")))
                total += count_text(enc, str(fn.get("arguments", "")))
    return total
