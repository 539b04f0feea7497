"""Token counting and splitting with OpenAI's o200k_base tokenizer (`bpe_openai`)."""

from __future__ import annotations

import importlib
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import bpe_openai

ENCODING = "o200k_base"
_CACHED_CHARS = 4096
"""Strings up to this long have their counts cached (prompts repeat in load tests)."""


@cache
def load_encoding(name: str = ENCODING) -> bpe_openai.Encoding:
    """The tokenizer tables, loaded once per process on first use (importing bpe_openai builds
    every encoding, about 2 s of CPU, so commands that never count tokens skip it)."""
    module = importlib.import_module("bpe_openai")
    encoding: bpe_openai.Encoding = module.get_encoding(name)
    return encoding


class Tokenizer:
    """Counts tokens and cuts text into pieces of known token counts.

    Special-token text such as `<|endoftext|>` is counted as ordinary text, never refused.
    """

    def __init__(self, encoding: bpe_openai.Encoding | None = None) -> None:
        self._enc = encoding or load_encoding()
        self._count_cached = lru_cache(maxsize=8192)(self._count)
        self.pieces = lru_cache(maxsize=65536)(self._pieces)

    def count(self, text: str) -> int:
        """Number of tokens in `text`."""
        if not text:
            return 0
        if len(text) <= _CACHED_CHARS:
            return self._count_cached(text)
        return self._count(text)

    def _count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text))

    def _pieces(self, text: str) -> tuple[tuple[str, int], ...]:
        """`text` as (piece, tokens) pairs: one token each, or the fewest forming whole characters.

        The pieces join back to `text` and their token counts add up to `count(text)`.
        """
        pieces: list[tuple[str, int]] = []
        pending = b""
        held = 0
        for token in self._enc.encode_ordinary(text):
            pending += self._enc.decode_single_token_bytes(token)
            held += 1
            try:
                piece = pending.decode("utf-8")
            except UnicodeDecodeError:
                continue
            pieces.append((piece, held))
            pending, held = b"", 0
        if pending:  # unreachable for valid str input, kept so counts always add up
            pieces.append((pending.decode("utf-8", "replace"), held))
        return tuple(pieces)
