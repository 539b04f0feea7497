"""Token counting with the real tokenizer."""

from __future__ import annotations

import bpe_openai
import pytest

from farebox.billing.tokens import KNOWN_ENCODINGS, count_messages, count_text, encoder

from support import run_python


def test_known_encodings_are_the_ones_bpe_openai_loads_offline() -> None:
    loadable = []
    for name in bpe_openai.list_encoding_names():
        try:
            bpe_openai.get_encoding(name)
        except Exception:  # gpt2, r50k, p50k: need tiktoken_ext and a download
            continue
        loadable.append(name)
    assert sorted(KNOWN_ENCODINGS) == sorted(loadable)


def test_the_install_built_the_c_counter() -> None:
    """`pip install --no-deps -e .` compiles billing/_bpecount.c (hatch_build.py); without a C
    compiler it warns and bpe_openai counts, with 44 MB more per process: not on our machines."""
    from farebox.billing.bpe import compact_module, tokenizer

    module = compact_module()
    assert module is not None, "billing/_bpecount.c was not compiled: see hatch_build.py"
    assert isinstance(tokenizer("o200k_base"), module.Encoder)


def test_unknown_encoding_falls_back_to_the_default() -> None:
    assert count_text(encoder("no-such-encoding"), "hello world") == 2


def test_messages_count_text_images_and_tool_calls() -> None:
    enc = encoder("o200k_base")
    plain = count_messages(enc, [{"role": "user", "content": "hello world"}])
    assert plain == 3 + 3 + 2
    with_image = count_messages(
        enc,
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello world"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            }
        ],
    )
    assert with_image == plain + 765
    with_call = count_messages(
        enc,
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
                ],
            }
        ],
    )
    assert with_call > 6


def test_cached_counts_are_per_encoding_and_bounded() -> None:
    from farebox.billing.tokens import _CountCache

    text = "Ünïcödé, emoji 🎉 and Ελληνικά: counted differently by each encoding " * 3
    cl100k, o200k = encoder("cl100k_base"), encoder("o200k_base")
    wrapped = {name: bpe_openai.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    assert cl100k.count(text) != o200k.count(text)
    cache = _CountCache(max_chars=10 * len(text))
    for _ in range(2):  # the second round comes from the cache
        assert cache.count(cl100k, text) == len(wrapped["cl100k_base"].encode_ordinary(text))
        assert cache.count(o200k, text) == len(wrapped["o200k_base"].encode_ordinary(text))
    for i in range(50):
        cache.count(o200k, f"{i} {text}")
    assert 0 < cache._chars <= 10 * len(text)
    huge = "x" * (10 * len(text))  # larger than an eighth of the budget: counted, not kept
    assert cache.count(o200k, huge) == len(wrapped["o200k_base"].encode_ordinary(huge))
    assert cache._chars <= 10 * len(text)


def test_text_that_spells_a_special_token_counts_as_text() -> None:
    """The tokenizer refuses "<|endoftext|>" unless told it is text: a chat message saying it
    was a 500."""
    enc = encoder("o200k_base")
    assert count_text(enc, "say <|endoftext|> twice <|endoftext|>") > 4
    assert count_text(enc, "<|im_start|>system") > 1


def test_text_longer_than_the_tokenizer_takes_at_once_is_counted_in_pieces() -> None:
    """bpe_openai refuses a million characters, or 200,000 tokens, in one call."""
    enc = encoder("o200k_base")
    words = count_text(enc, "lorem ipsum " * 1_000)
    assert count_text(enc, "lorem ipsum " * 100_000) == pytest.approx(100 * words, rel=0.001)
    assert count_text(enc, "\u00e9\U0001f600" * 300_000) >= 300_000


SAMPLES = [
    "hello world",
    "say <|endoftext|> twice <|endoftext|> and <|fim_prefix|>",
    "Ünïcödé, emoji 🎉🎉 and Ελληνικά, 日本語のテキスト, مرحبا بالعالم, Привет мир",
    "def f(x):\n    return x  # code\n\n\n\t\t  trailing   \n",
    "1234567890 " * 50 + "x" * 5000,
    "a" * 1_200_000,  # longer than bpe_openai's Python wrapper encodes at once
]


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_counts_are_exactly_what_the_wrapper_encodes(name: str) -> None:
    """The lean path (the Rust extension's count) gives the wrapper's encode_ordinary length."""
    wrapper = bpe_openai.get_encoding(name)
    enc = encoder(name)
    for text in SAMPLES:
        if len(text) < 1_000_000:
            assert count_text(enc, text) == len(wrapper.encode_ordinary(text)), text[:40]
        else:
            pieces = [text[i : i + 40_000] for i in range(0, len(text), 40_000)]
            assert count_text(enc, text) == sum(len(wrapper.encode_ordinary(p)) for p in pieces)


def test_counting_never_imports_the_wrapper_or_its_python_tables() -> None:
    """Importing the bpe_openai package decodes every encoding's table into Python dicts
    (~65 MB): the gateway reads its rank files with the C counter (billing/_bpecount.c), and
    would load the Rust extension alone if that was not built."""
    code = (
        "import sys\n"
        "from farebox.billing.tokens import count_text, encoder\n"
        "assert count_text(encoder('o200k_base'), 'hello world') == 2\n"
        "assert count_text(encoder('cl100k_base'), 'hello world') == 2\n"
        "print(sorted(m for m in sys.modules if m.startswith('bpe_openai')))\n"
    )
    out = run_python(code, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_count_cache_is_bounded_in_entries_too() -> None:
    """Short texts under a character budget alone once filled it with 168,000 entries (64 MB)."""
    from farebox.billing.tokens import _CountCache

    cache = _CountCache(max_chars=1_000_000, max_entries=100)
    enc = encoder("o200k_base")
    for i in range(1000):
        assert cache.count(enc, f"text number {i}") == count_text(enc, f"text number {i}")
    assert len(cache._counts) == 100
    assert cache._chars == sum(len(text) for _, text in cache._counts)
