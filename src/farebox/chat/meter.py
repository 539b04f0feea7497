"""Counting streamed output without tokenizing every delta.

Deltas are kept as text and tokenized together when a decision needs the exact count (near the
paid budget, for a progress record, at the end). In between, the UTF-8 length of the uncounted
text is a safe upper bound: every token is at least one byte. Tokenizing the text in larger
pieces is also closer to how the upstream counted it than tokenizing each fragment alone.
"""

from __future__ import annotations

from typing import Any

from farebox.billing.tokens import Encoder, encoded_length

_TEXT_FIELDS = ("content", "reasoning", "reasoning_content", "refusal")


def delta_texts(choices: list[Any]) -> list[str]:
    """Everything a chunk's choices add: text, reasoning, refusals, tool-call names and arguments."""
    texts: list[str] = []
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for field in _TEXT_FIELDS:
            text = delta.get(field)
            if isinstance(text, str) and text:
                texts.append(text)
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                for part in (fn.get("name"), fn.get("arguments")):
                    if isinstance(part, str) and part:
                        texts.append(part)
    return texts


def utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


class OutputMeter:
    __slots__ = ("_enc", "_pending", "_pending_bytes", "exact")

    def __init__(self, enc: Encoder) -> None:
        self._enc = enc
        self.exact = 0  # tokens of the text counted so far
        self._pending: list[str] = []
        self._pending_bytes = 0

    @property
    def upper_bound(self) -> int:
        """Never less than the true count."""
        return self.exact + self._pending_bytes

    def add(self, texts: list[str], nbytes: int) -> None:
        self._pending.extend(texts)
        self._pending_bytes += nbytes

    def add_counted(self, tokens: int) -> None:
        self.exact += tokens

    def count(self) -> int:
        """The exact count of everything added."""
        if self._pending:
            self.exact += _uncached(self._enc, "".join(self._pending))
            self._pending.clear()
            self._pending_bytes = 0
        return self.exact

    def measure(self, texts: list[str]) -> int:
        return _uncached(self._enc, "".join(texts))


def _uncached(enc: Encoder, text: str) -> int:
    """Streamed output is counted without the prompt cache: answers rarely repeat, and each one
    would push a prompt out of it."""
    return encoded_length(enc, text) if text else 0
