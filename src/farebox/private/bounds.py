"""Billing a request the gateway cannot read: the worst case to hold, and the estimate used
when the enclave reports no usage.

What the relay knows: the sealed body's frames (their count and sizes, so the plaintext length
exactly: each frame is its plaintext plus a 16-byte tag), the model it routes to, and, after
the answer, the response's frames. Not the prompt, not the images, not max_tokens.

The hold (taken before anything is forwarded) is an upper bound:
- input tokens ≤ the plaintext's bytes (a token of the JSON body spans at least one byte;
  the chat template's few tokens per message are fewer than the JSON each message needs), plus,
  for a model with an `image_tokens` allowance, that allowance for every image the body could
  hold (one per MIN_IMAGE_PART_BYTES of plaintext), and never more than the model's context;
- output tokens ≤ the model's `max_output` (the relay cannot lower max_tokens in a sealed body).

When the enclave's usage report does not arrive (a dropped trailer, a stream cut by the enclave,
a client that left), the charge is an estimate, never above the hold, and the history row says
why (`reconcile`):
- input: ceil(plaintext bytes / 4), within the input bound;
- output: one token per response frame delivered on an event stream (the enclave seals each SSE
  event as one frame), else ceil(delivered plaintext bytes / 4); within `max_output`.
"""

from __future__ import annotations

from dataclasses import dataclass

from farebox.billing.pricing import TokenUsage, output_cost, quote_input_cost, usage_cost
from farebox.catalog.model import CatalogModel
from farebox.money import ceil_div

MIN_IMAGE_PART_BYTES = 40
"""`{"type":"image_url","image_url":{"url":"x"}}` is 43 bytes: no image part is shorter."""
BYTES_PER_TOKEN = 4
"""The estimate's rate (English text runs ~4 bytes a token in BPE tokenizers)."""


@dataclass(frozen=True, slots=True)
class PrivateQuote:
    input_tokens: int  # the most the prompt can count
    output_tokens: int  # the most the answer can count
    hold: int  # nanodollars

    @property
    def tokens(self) -> TokenUsage:
        return TokenUsage(self.input_tokens, self.output_tokens)


def input_bound(model: CatalogModel, plaintext_bytes: int) -> int:
    images = plaintext_bytes // MIN_IMAGE_PART_BYTES if model.image_tokens else 0
    return min(model.context, plaintext_bytes + images * (model.image_tokens or 0))


def quote(model: CatalogModel, plaintext_bytes: int) -> PrivateQuote:
    """The worst case of a request with this much plaintext."""
    tokens_in = input_bound(model, plaintext_bytes)
    tokens_out = model.max_output
    hold = quote_input_cost(model.price, tokens_in) + output_cost(model.price, tokens_out)
    return PrivateQuote(tokens_in, tokens_out, hold)


@dataclass(frozen=True, slots=True)
class Delivered:
    """What the relay passed back of a response: its frames and their plaintext bytes."""

    frames: int
    plaintext_bytes: int
    event_stream: bool


def estimate(
    model: CatalogModel, limit: PrivateQuote, request_plaintext: int, sent: Delivered
) -> TokenUsage:
    """The stated estimate for a request the enclave reported no usage for (module docstring)."""
    tokens_in = min(limit.input_tokens, ceil_div(request_plaintext, BYTES_PER_TOKEN))
    if sent.event_stream:
        tokens_out = sent.frames
    else:
        tokens_out = ceil_div(sent.plaintext_bytes, BYTES_PER_TOKEN)
    return TokenUsage(tokens_in, min(tokens_out, limit.output_tokens, model.max_output))


def cost(model: CatalogModel, usage: TokenUsage) -> int:
    return usage_cost(model.price, usage)
