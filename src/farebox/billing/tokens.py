"""Counting tokens with a real tokenizer (bpe-openai ships its tables, so it works offline; see
billing/bpe.py for how they are loaded)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Protocol

from farebox.billing.bpe import tokenizer

# OpenAI's chat format adds a few tokens per message and for priming the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
# A conservative fixed estimate for one image part (OpenAI's high-detail 1024px tile cost).
TOKENS_PER_IMAGE = 765
DEFAULT_ENCODING = "o200k_base"
# The encodings bpe_openai ships and can load offline (checked by a test). It also lists gpt2,
# r50k and p50k, which need tiktoken_ext to fetch their tables at run time: a catalog naming one
# is refused rather than counted silently with another encoding.
KNOWN_ENCODINGS = (
    "cl100k_base",
    "o200k_base",
    "voyage3_base",
)


class Encoder(Protocol):
    def count(self, text: str) -> int: ...


def encoded_length(enc: Encoder, text: str) -> int:
    """Tokens in `text`, as `encode_ordinary` would give them: text that spells a special token
    ("<|endoftext|>") counts as the plain text it is (the Rust tokenizer knows no special
    tokens), and any length is counted whole."""
    return enc.count(text)


@lru_cache(maxsize=16)
def encoder(name: str) -> Encoder:
    """The named encoding (the default one for a name it does not know).

    An encoding's tables are built on first use (about 0.1 s), so commands that never count
    tokens skip them; the server builds those its catalog names at start (see app.py), and no
    others.
    """
    try:
        return tokenizer(name)
    except ValueError:
        return tokenizer(DEFAULT_ENCODING)


class _CountCache:
    """Token counts of recently seen texts, bounded in entries and in characters.

    Prompts repeat: a system prompt or a conversation's earlier turns come back in every
    request, and tokenizing is the dearest part of quoting one (milliseconds for a long system
    prompt). Looking a text up costs one hash of it. The cache keeps the texts themselves (as
    keys), so both bounds matter: filled with 100-character texts under the former bound of
    16 M characters alone it held 168,000 entries and 64 MB (the soak benchmark's RSS grew by
    that much); now at most `max_entries` texts and `max_chars` characters (about 8 MB full).
    Answers are not cached (they rarely repeat): see `encoded_length`.
    """

    def __init__(self, max_chars: int, max_entries: int = 8192) -> None:
        self._max_chars = max_chars
        self._max_entries = max_entries
        self._chars = 0
        self._counts: OrderedDict[tuple[int, str], int] = OrderedDict()

    def count(self, enc: Encoder, text: str) -> int:
        key = (id(enc), text)  # encoders live as long as the process (encoder() keeps them)
        counts = self._counts
        found = counts.get(key)
        if found is not None:
            with contextlib.suppress(KeyError):  # another thread may have evicted it just now
                counts.move_to_end(key)
            return found
        found = encoded_length(enc, text)
        if len(text) <= self._max_chars // 8:
            counts[key] = found
            self._chars += len(text)
            while (self._chars > self._max_chars or len(counts) > self._max_entries) and counts:
                (_, old), _ = counts.popitem(last=False)
                self._chars -= len(old)
        return found


_CACHE = _CountCache(max_chars=4 * 1024 * 1024)


def count_text(enc: Encoder, text: str) -> int:
    return _CACHE.count(enc, text) if text else 0


def _content_tokens(enc: Encoder, content: Any) -> int:
    if isinstance(content, str):
        return count_text(enc, content)
    total = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                total += count_text(enc, part["text"])
            elif kind in ("image_url", "image", "input_image") or kind == "input_audio":
                total += TOKENS_PER_IMAGE
    return total


def count_messages(enc: Encoder, messages: Iterable[Any]) -> int:
    """Prompt tokens of OpenAI chat messages, as OpenAI counts them (text, tool calls, images)."""
    total = TOKENS_PER_REPLY
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        total += TOKENS_PER_MESSAGE
        total += _content_tokens(enc, msg.get("content"))
        name = msg.get("name")
        if isinstance(name, str):
            total += count_text(enc, name)
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                total += count_text(enc, str(fn.get("name", "")))
                total += count_text(enc, str(fn.get("arguments", "")))
    return total


def count_json(enc: Encoder, raw: bytes) -> int:
    """Tokens of a JSON-encoded value (tool schemas, response formats) as the upstream sees them."""
    return count_text(enc, raw.decode())
