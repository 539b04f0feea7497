"""Completion text from prompts, and its token counts against the real tokenizer."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farebox.sim.textgen import FALLBACK_TEXT, TextGen
from farebox.sim.tokens import Tokenizer, load_encoding
from farebox.sim.tool_args import tool_arguments


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module")
def gen(tok: Tokenizer) -> TextGen:
    return TextGen(tok)


def test_words_are_cycled_to_the_limit(gen: TextGen) -> None:
    done = gen.complete("Say hello to the world", 7)
    assert done.text == "Say hello to the world Say hello"
    assert done.tokens == 7
    assert done.pieces == ("Say", " hello", " to", " the", " world", " Say", " hello")
    assert done.counts == (1,) * 7


def test_empty_prompt_uses_the_fallback(gen: TextGen) -> None:
    done = gen.complete("   ", 3)
    assert done.text == " ".join(FALLBACK_TEXT.split()[:3])


def test_zero_tokens_is_empty(gen: TextGen) -> None:
    done = gen.complete("hello", 0)
    assert (done.text, done.tokens, done.pieces) == ("", 0, ())


def test_pieces_are_one_token_each_for_plain_words(gen: TextGen) -> None:
    enc = load_encoding()
    done = gen.complete("tokenization is antidisestablishmentarianism", 12)
    assert all(n == 1 for n in done.counts)
    assert [enc.encode_ordinary(p) for p in done.pieces] == [
        [t] for t in enc.encode_ordinary(done.text)
    ]


def test_special_token_text_counts_as_text(tok: Tokenizer) -> None:
    assert tok.count("<|endoftext|>") > 1


@settings(max_examples=300, deadline=None)
@given(prompt=st.text(max_size=80), limit=st.integers(min_value=0, max_value=40))
def test_counts_match_the_tokenizer(gen: TextGen, tok: Tokenizer, prompt: str, limit: int) -> None:
    done = gen.complete(prompt, limit)
    assert "".join(done.pieces) == done.text
    assert sum(done.counts) == done.tokens == tok.count(done.text)
    assert done.tokens <= limit
    # A cut inside a multi-token word may cost at most that word's remaining tokens.
    if done.tokens < limit:
        assert limit - done.tokens < 10


def test_tool_arguments_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "alerts": {"type": ["boolean", "null"]},
        },
    }
    args = tool_arguments(schema, "weather in Paris next week please and thanks")
    assert args == {"city": "weather in Paris next week", "days": 8, "unit": "c", "alerts": True}
    assert tool_arguments(None, "") == {"input": "sim"}
