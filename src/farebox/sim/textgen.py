"""The simulated completion text: the prompt's words, cycled to the wanted token count.

For a prompt "Say hello" and 5 tokens the text is "Say hello Say hello Say": words joined by single
spaces, cut at `limit` tokens. Each word after the first is one pre-token group (" word") for
o200k_base, so the text's token count is the sum of its words' counts; a word cut by the limit is
kept only as far as its prefix still counts the same on its own (rarely, one token fewer).
Prompts with no words use `FALLBACK_TEXT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from farebox.sim.tokens import Tokenizer

FALLBACK_TEXT = "The quick brown fox jumps over the lazy dog."
FALLBACK_WORDS: tuple[str, ...] = tuple(FALLBACK_TEXT.split())


@dataclass(frozen=True, slots=True)
class Completion:
    """A completion cut into stream pieces with known token counts."""

    pieces: tuple[str, ...]
    counts: tuple[int, ...]
    """Tokens in each piece (almost always 1)."""
    text: str
    tokens: int
    """`sum(counts)`, equal to the tokenizer's count of `text`."""


class TextGen:
    """Builds completions from prompts; results are cached (load tests repeat prompts)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        self._complete_words = lru_cache(maxsize=2048)(self._build)

    def complete(self, prompt: str, limit: int) -> Completion:
        """At most `limit` tokens of the prompt's words, cycled."""
        words = tuple(prompt.split(None, limit)[:limit]) if limit > 0 else ()
        return self._complete_words(words or FALLBACK_WORDS, limit)

    def _build(self, words: tuple[str, ...], limit: int) -> Completion:
        pieces: list[str] = []
        counts: list[int] = []
        total = 0
        index = 0
        while total < limit:
            word = words[index % len(words)]
            unit = self._tok.pieces(word if index == 0 else " " + word)
            need = sum(n for _, n in unit)
            if total + need <= limit:
                pieces.extend(p for p, _ in unit)
                counts.extend(n for _, n in unit)
                total += need
                index += 1
                continue
            cut = self._fitting_prefix(unit, limit - total)
            pieces.extend(p for p, _ in cut)
            counts.extend(n for _, n in cut)
            total += sum(n for _, n in cut)
            break
        return Completion(tuple(pieces), tuple(counts), "".join(pieces), total)

    def _fitting_prefix(
        self, unit: tuple[tuple[str, int], ...], room: int
    ) -> list[tuple[str, int]]:
        """The longest start of `unit` within `room` tokens that tokenizes the same on its own."""
        cut: list[tuple[str, int]] = []
        used = 0
        for piece, n in unit:
            if used + n > room:
                break
            cut.append((piece, n))
            used += n
        while cut and self._tok.count("".join(p for p, _ in cut)) != used:
            used -= cut.pop()[1]
        return cut
