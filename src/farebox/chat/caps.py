"""The token cap an upstream call is sent, and how much of it is held before the call.

An upstream bills every output token it generates up to the cap it is sent, hidden reasoning
included. A stream shows only the visible part, so the meter can extend a hold for what it sees
and nothing else: for hidden output only the cap, fixed when the call starts, bounds the bill.
So every chat call is sent a cap, and:

- The cap asked for is, per choice, the customer's `max_tokens`, else the operator's default
  (`FAREBOX_DEFAULT_MAX_TOKENS`), never above the model's `max_output`.
- A call whose output the meter may not see in full (every model unless its catalog entry says
  `all_output_visible`), and every non-streamed call (it cannot be cut short), holds the whole
  cap for all its choices before the call. When the customer cannot pay for that much, the hold
  takes what is available and the cap is lowered to what it pays for (at least one token): never
  a needless 402, and never a cap above the hold.
- Only a stream of an all-visible model holds a first increment and is sent the whole cap: the
  meter counts every token, extends the hold ahead of the output, and cuts the stream when the
  customer cannot pay for more (the upstream then bills no more than it sent).

A lowered cap also lowers a reasoning budget the request carries (Anthropic's `thinking`, as
LiteLLM accepts it, and OpenRouter's `reasoning.max_tokens`; see farebox/thinking.py), since a
budget at or above the cap is refused, or worth nothing; an Anthropic route fits its own request
the same way. An OpenAI-compatible upstream gets the cap in the field its provider's catalog entry
names (`max_tokens_field`), whichever field the customer used (providers/openai_compat.py).
"""

from __future__ import annotations

from farebox.billing.pricing import tokens_for_budget
from farebox.catalog.model import TokenPrices
from farebox.chat.request import ChatCall
from farebox.thinking import fit_reasoning, fit_thinking


def asked_tokens(call: ChatCall, default_max_tokens: int) -> int:
    """Output tokens per choice the call asks for (the customer's, else the default)."""
    return call.max_tokens or min(default_max_tokens, call.model.max_output)


def metered_past_hold(call: ChatCall) -> bool:
    """Whether the cap may exceed the hold: a stream whose every output token the meter sees."""
    return call.stream and call.model.all_output_visible


def affordable_cap(prices: TokenPrices, output_nanos: int, asked: int, n: int) -> int:
    """The cap per choice that `output_nanos` of held money pays for: `asked` at most, one
    token at least (the hold's minimum pays for one token per choice)."""
    return max(1, min(asked, tokens_for_budget(prices.output, output_nanos) // n))


def send_cap(call: ChatCall, cap: int) -> None:
    """Put the cap in the request (in the customer's field, the other one dropped: an upstream
    must not find a larger cap there), and keep any reasoning budget below the cap."""
    call.body.pop("max_tokens", None)
    call.body.pop("max_completion_tokens", None)
    call.body[call.max_tokens_field] = cap
    fit_thinking(call.body, cap)
    fit_reasoning(call.body, cap)
