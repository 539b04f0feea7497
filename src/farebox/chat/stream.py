"""Relaying a streamed completion while metering it against what the customer has paid for.

Chunks go to the customer as the upstream sent them (no re-serialising) unless they must change.
Output is counted with the model's tokenizer as it passes; the hold is extended in the background
before it runs out; a chunk the customer cannot pay for is not sent: the stream ends there with
`finish_reason: "length"`. Whatever ends the stream (done, cut, client gone, upstream broken), the
customer pays for the input and the output that was delivered, never more than was held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from farebox.billing.charge import Charge
from farebox.billing.losses import LossBook, loss_of
from farebox.billing.pricing import TokenUsage, output_cost, tokens_for_budget, usage_cost
from farebox.billing.tokens import encoder
from farebox.chat.meter import OutputMeter, delta_texts, utf8_length
from farebox.chat.request import ChatCall
from farebox.chat.sse import DONE, DONE_EVENT, SseSplitter, data_event, event_data
from farebox.chat.usage import usage_from_upstream, usage_payload
from farebox.ledger.losses import OperatorLoss
from farebox.ledger.sweep import encode_recovery
from farebox.ledger.types import QueryRecord
from farebox.net.drain import Drain
from farebox.providers.base import UpstreamReply

log = logging.getLogger("farebox.chat")


_SUSPECT = (b'"usage"', b'"error"', DONE, b"\r")  # what a plain block of events never holds


def plain_prefix(data: bytes) -> int:
    """The length of `data`'s longest prefix of whole events none of which is a usage chunk, an
    error or DONE (0: none). Such events are relayed as they came, in one block, unparsed. A
    quote inside a JSON string is escaped, so `"usage"` only matches the field itself."""
    end = len(data)
    for marker in _SUSPECT:
        at = data.find(marker, 0, end)
        if at >= 0:
            end = at
    last = data.rfind(b"\n\n", 0, end)  # the end of the last whole event before `end`
    return last + 2 if last >= 0 else 0


def _first_event(data: bytes) -> tuple[list[bytes], bytes]:
    """The first whole event of `data` and the rest (the splitter is empty); ([], data) when
    `data` needs the splitter (no whole event, or CR line ends to normalise)."""
    end = data.find(b"\n\n")
    if end < 0 or b"\r" in data:
        return [], data
    return [data[: end + 2]], data[end + 2 :]


def _plain_chunk(payload: bytes) -> bool:
    """A chunk with no usage object and no error (cheap byte checks, no parsing)."""
    return (
        b'"usage":{' not in payload
        and b'"usage": {' not in payload
        and not payload.startswith(b'{"error"')
    )


@dataclass(slots=True)
class _Seen:
    """What a stream's relay has seen so far (StreamRelay.events and the methods it reads with)."""

    fully_paid: bool  # the holds cover the whole output cap: plain chunks need no decision
    splitter: SseSplitter = field(default_factory=SseSplitter)
    unparsed: list[bytes] = field(default_factory=list)  # relayed unparsed: counted if need be
    upstream_usage: dict[str, Any] | None = None
    error_event: bytes | None = None
    choice_indexes: set[int] = field(default_factory=set)
    finished: bool = False  # DONE came
    cut: bool = False  # a chunk the customer cannot pay for came: the stream ends there


class StreamRelay:
    def __init__(
        self,
        call: ChatCall,
        charge: Charge,
        reply: UpstreamReply,
        input_nanos: int,
        increment_tokens: int,
        query: QueryRecord,
        max_total: int,
        losses: LossBook | None = None,
        drain: Drain | None = None,
    ) -> None:
        self.call = call
        self.drain = drain
        self.charge = charge
        self.reply = reply
        self.input_nanos = input_nanos
        self.increment_tokens = increment_tokens
        self.query = query
        self.prices = call.model.price
        self.meter = OutputMeter(encoder(call.model.tokenizer))
        self.max_total = max_total  # the output the upstream was capped at, all choices
        self.losses = losses
        self.exhausted = False
        self._extension: asyncio.Task[None] | None = None
        self._meta: dict[str, Any] = {}
        self._renames: tuple[tuple[bytes, bytes], ...] = ()
        self._budget = 0
        self._budget_for = -1
        self._stopped = False  # cut by the drain deadline (net/drain.py)
        self._reading: asyncio.Task[Any] | None = None  # the task, while it awaits the upstream

    def stop(self) -> None:
        """End the stream now (the server's drain deadline): no more upstream output; the
        customer gets the end of the stream and pays for what was delivered."""
        self._stopped = True
        if self._reading is not None:
            self._reading.cancel()  # wake the upstream read; `events` tells this from others

    @property
    def produced(self) -> int:
        """Output tokens delivered so far (exact)."""
        return self.meter.count()

    @property
    def budget(self) -> int:
        """Output tokens the holds pay for (recomputed only when the holds change)."""
        held = self.charge.held
        if held != self._budget_for:
            paid = tokens_for_budget(self.prices.output, held - self.input_nanos)
            self._budget = min(paid, self.max_total)
            self._budget_for = held
        return self._budget

    async def _extend(self, needed: int) -> None:
        """Hold for more output: at least `needed` more tokens, ideally a whole increment."""
        room = self.max_total - self.budget
        if room <= 0 or self.exhausted:
            self.exhausted = True
            return
        want_tokens = min(max(self.increment_tokens, needed, self.budget), room)
        recorded = self.input_nanos + output_cost(self.prices, self.produced)
        held = await self.charge.extend(
            output_cost(self.prices, want_tokens),
            output_cost(self.prices, max(needed, 1)),
            recorded,
            encode_recovery(self._query(self.produced, None)),
        )
        if held == 0:
            self.exhausted = True

    def _start_extension(self) -> None:
        if self._can_extend():
            self._extension = asyncio.get_running_loop().create_task(self._extend(1))
            self._extension.add_done_callback(self._extension_done)

    def _extension_done(self, task: asyncio.Task[None]) -> None:
        self._extension = None
        if not task.cancelled() and task.exception() is not None:
            log.error("extending a hold failed: %r", task.exception())
            self.exhausted = True

    async def _make_room(self, total: int) -> bool:
        """True when the customer has paid for `total` output tokens in all."""
        while total > self.budget and not self.exhausted:
            if self._extension is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._extension)
            else:
                await self._extend(total - self.budget)
        return total <= self.budget

    async def _admit(self, texts: list[str]) -> bool:
        """Meter a chunk's text; False when the customer cannot pay for it (it is not sent)."""
        nbytes = sum(utf8_length(t) for t in texts)
        budget = self.budget
        if budget >= self.max_total or self.meter.upper_bound + nbytes <= budget:
            # Fully paid for (the upstream itself stops at max_tokens), or surely within budget.
            self.meter.add(texts, nbytes)
        else:
            total = self.meter.count() + self.meter.measure(texts)
            if not await self._make_room(total):
                return False
            self.meter.add_counted(total - self.meter.exact)
        half_used = self.meter.upper_bound * 2 >= self.budget
        if half_used and self._can_extend() and self.meter.count() * 2 >= self.budget:
            self._start_extension()  # in the background, before the holds run out
        return True

    def _can_extend(self) -> bool:
        return self._extension is None and not self.exhausted and self.budget < self.max_total

    def _query(self, output_count: int, usage: TokenUsage | None) -> QueryRecord:
        prompt = usage.prompt_tokens if usage else self.call.prompt_tokens
        return QueryRecord(
            model=self.query.model,
            input_count=prompt,
            output_count=output_count,
            query_type=self.query.query_type,
            query_source=self.query.query_source,
            is_online=self.query.is_online,
            is_free_model=self.query.is_free_model,
        )

    def _chunk(self, choices: list[Any], usage: dict[str, Any] | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": self._meta.get("id", "chatcmpl-" + self.charge.request_id),
            "object": "chat.completion.chunk",
            "created": self._meta.get("created", int(time.time())),
            "model": self.call.model.id,
            "choices": choices,
        }
        if usage is not None:
            obj["usage"] = usage
        return data_event(obj)

    def _name_model(self, upstream_model: object) -> None:
        """Chunks name the catalog id the customer asked for, not the upstream's model id: the
        bytes `"model":"<upstream id>"` are replaced as they pass (JSON text inside a string
        escapes its quotes, so only the field itself can match)."""
        ours = self.call.model.id
        if not isinstance(upstream_model, str) or upstream_model == ours:
            return
        theirs, mine = orjson.dumps(upstream_model), orjson.dumps(ours)
        self._renames = tuple(
            (b'"model"' + sep + theirs, b'"model"' + sep + mine) for sep in (b":", b": ")
        )

    def _renamed(self, data: bytes) -> bytes:
        for theirs, mine in self._renames:
            data = data.replace(theirs, mine)
        return data

    def _progress(self) -> tuple[int, str | None]:
        """Usage delivered so far, for the lease keeper to record (crash recovery)."""
        recorded = self.input_nanos + output_cost(self.prices, self.produced)
        return recorded, encode_recovery(self._query(self.produced, None))

    async def events(self) -> AsyncIterator[bytes]:
        self.charge.report_progress(self._progress)
        # When the holds already cover all the output the upstream may send (max_tokens paid in
        # full), plain chunks need no decision in flight and are relayed without being parsed.
        seen = _Seen(fully_paid=self.budget >= self.max_total)
        forget = self.drain.register(self.stop) if self.drain is not None else None
        chunks = self.reply.chunks()
        task = asyncio.current_task()
        try:
            try:
                while not self._stopped:
                    self._reading = task  # `stop` cancels the task only while it waits here
                    try:
                        data = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if not self._stopped or task is None:
                            raise
                        task.uncancel()  # cut by `stop`: end the stream as below
                        break
                    finally:
                        self._reading = None
                    out = await self._relay_read(data, seen)
                    if out:
                        yield self._renamed(b"".join(out))
                    if seen.cut or seen.finished:
                        break
            except Exception as exc:  # the upstream broke off mid-stream
                log.warning("upstream stream for %s broke: %r", self.call.model.id, exc)
                seen.error_event = seen.error_event or data_event(
                    {
                        "error": {
                            "message": "The upstream provider broke off the stream. You are "
                            "charged only for the output you received.",
                            "type": "upstream_error",
                            "code": "upstream_stream_broken",
                        }
                    }
                )
            if self._stopped and not (seen.cut or seen.finished):
                self.reply.close()
                seen.error_event = seen.error_event or data_event(
                    {
                        "error": {
                            "message": "The gateway is restarting and ended this stream. You are "
                            "charged only for the output you received.",
                            "type": "server_error",
                            "code": "gateway_restarting",
                        }
                    }
                )
            if seen.cut:
                self.reply.close()
                yield self._chunk(
                    [
                        {"index": i, "delta": {}, "finish_reason": "length"}
                        for i in sorted(seen.choice_indexes or {0})
                    ]
                )
            complete = seen.finished and not seen.cut and seen.error_event is None
            if not (complete and seen.upstream_usage):
                self._count_relayed(seen.unparsed)
            usage = self._final_usage(
                seen.upstream_usage if complete else None, seen.upstream_usage
            )
            if self.call.addon is not None:
                self.call.addon.reply_seen(seen.upstream_usage)
            await self._cover(usage)
            cost = self._settle(usage)
            loss = self._loss(usage, cost)
            if loss is not None and self.losses is not None:
                await self.losses.record(loss)
            # The end goes out in one write: our usage chunk, the upstream's error if any, DONE.
            yield (
                b"".join(
                    (
                        self._chunk([], usage_payload(usage, cost, seen.upstream_usage)),
                        seen.error_event or b"",
                    )
                )
                + DONE_EVENT
            )
        finally:
            if forget is not None:
                forget()
            if not self.charge.settled:
                # The customer went away (or something failed): bill what was delivered.
                self._count_relayed(seen.unparsed)
                usage = self._final_usage(None, seen.upstream_usage)
                if self.call.addon is not None:
                    self.call.addon.reply_seen(seen.upstream_usage)
                loss = self._loss(usage, self._settle(usage))
                if loss is not None and self.losses is not None:
                    self.losses.record_soon(loss)  # the stream is closing: cannot wait here
            self.reply.close()

    async def _relay_read(self, data: bytes, seen: _Seen) -> list[bytes]:
        """What one upstream read sends the customer: runs of whole plain events as one block,
        unparsed (the common case); the rest event by event."""
        out: list[bytes] = []
        splitter = seen.splitter
        while data and not (seen.cut or seen.finished):
            if seen.fully_paid and self._meta and splitter.empty:
                end = plain_prefix(data)
                if end:
                    block = data if end == len(data) else data[:end]
                    seen.unparsed.append(block)
                    out.append(block)
                    data = data[end:]
                    continue
            events: list[bytes] = []
            if not self._meta and splitter.empty:
                # One event at a time until the first chunk gives the stream's id.
                events, data = _first_event(data)
            if not events:
                events, data = splitter.feed(data), b""
            for event in events:
                await self._relay_event(event, seen, out)
                if seen.cut:
                    break
        return out

    async def _relay_event(self, event: bytes, seen: _Seen, out: list[bytes]) -> None:
        """One whole event: relayed as is, changed, held back (an error, the upstream's usage
        chunk, DONE: the end is ours) or refused (`seen.cut`: the customer cannot pay for it)."""
        payload = event_data(event)
        if payload is None:
            out.append(event)
            return
        if payload == DONE:
            seen.finished = True
            return
        if seen.fully_paid and self._meta and _plain_chunk(payload):
            # Nothing to decide and nothing to change: relay as is, count later only if the
            # upstream's own usage never comes.
            seen.unparsed.append(payload)
            out.append(event)
            return
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            out.append(event)
            return
        if not isinstance(obj, dict):
            out.append(event)
            return
        if "error" in obj:
            seen.error_event = event
            return
        if not self._meta and "id" in obj:
            self._meta = {k: obj.get(k) for k in ("id", "created", "model")}
            self._name_model(obj.get("model"))
        usage = obj.get("usage")
        if usage:
            seen.upstream_usage = usage
        choices = obj.get("choices") or []
        if not choices:
            return  # the upstream's usage chunk: ours replaces it at the end
        texts = delta_texts(choices)
        if texts and not await self._admit(texts):
            seen.cut = True
            return
        for choice in choices:
            seen.choice_indexes.add(int(choice.get("index", 0)))
        if usage:
            del obj["usage"]
            out.append(data_event(obj))
        else:
            out.append(event)

    def _count_relayed(self, relayed: list[bytes]) -> None:
        """Meter chunks that were relayed without being parsed (payloads, or blocks of whole
        events relayed at once)."""
        payloads: list[bytes] = []
        for item in relayed:
            if item.endswith(b"\n\n"):  # a block of events (a payload is bare JSON)
                events = SseSplitter().feed(item)
                payloads.extend(p for p in map(event_data, events) if p is not None)
            else:
                payloads.append(item)
        for payload in payloads:
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                texts = delta_texts(obj.get("choices") or [])
                self.meter.add(texts, sum(utf8_length(t) for t in texts))
        relayed.clear()

    def _final_usage(
        self, reported: dict[str, Any] | None, any_reported: dict[str, Any] | None
    ) -> TokenUsage:
        if reported is not None:
            usage = usage_from_upstream(reported)
            if usage is not None:
                return usage
        prompt = self.call.prompt_tokens
        if any_reported is not None:
            partial = usage_from_upstream(any_reported)
            if partial is not None:
                prompt = partial.prompt_tokens
        return TokenUsage(prompt_tokens=prompt, completion_tokens=self.produced)

    async def _cover(self, usage: TokenUsage) -> None:
        """Hold what the upstream counted beyond our holds (its tokenizer is not ours), if the
        customer can pay for it: settlement posts at most what is held."""
        if self._extension is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._extension)
        short = usage_cost(self.prices, usage) + self.call.extra_cost - self.charge.held
        if short > 0:
            recorded, recovery = self._progress()
            await self.charge.extend(short, short, recorded, recovery)

    def _loss(self, usage: TokenUsage, cost: int) -> OperatorLoss | None:
        """The operator's loss when the usage was worth more than the customer was charged."""
        worth = usage_cost(self.prices, usage) + self.call.extra_cost
        return loss_of(self.charge, self.call.model, usage, worth, cost) if worth > cost else None

    def _settle(self, usage: TokenUsage) -> int:
        cost = min(usage_cost(self.prices, usage) + self.call.extra_cost, self.charge.held)
        query = self._query(usage.completion_tokens, usage)
        pending = self._extension
        if pending is not None and not pending.done():
            # Settle once the extension's hold is known, so it is resolved with the rest.
            self.charge.settled = True
            pending.add_done_callback(lambda _task: self.charge.settle(cost, query))
        else:
            self.charge.settle(cost, query)
        return cost
