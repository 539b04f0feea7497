"""The C token counter (_bpecount) against bpe_openai's Rust one, which stays the reference."""

from __future__ import annotations

import base64
import gzip
import random
from pathlib import Path

import pytest

from farebox.billing import bpe
from farebox.billing.bpe import compact_module, compact_tokenizer, rank_file, rust_tokenizer

from support import run_python

ROOT = Path(__file__).resolve().parents[2]
ENCODINGS = ["o200k_base", "cl100k_base"]
module = compact_module()
pytestmark = pytest.mark.skipif(module is None, reason="_bpecount was not built")

WORDS = ["hello", "World", "the", "NASA", "naïve", "Straße", "ǅemal", "ǈubljana", "ΣΊΣΥΦΟΣ"]
WORDS += ["日本語", "中文测试", "한국어", "مرحبا", "Привет", "e\u0301", "\u0301\u0301x", "ǲ"]
PIECES = ["'s", "'S", "'ſ", "'t", "'T", "'re", "'RE", "'rE", "'ve", "'Ve", "'m", "'M", "'ll"]
PIECES += ["'LL", "'lL", "'d", "'D", "'K", "'\u212a", "'ſt", "'", "''", "'x"]
PIECES += [" ", "  ", "   ", "\t", "\n", "\r\n", "\r\n\r\n", " \n ", "\u00a0", "\u3000", "\u2028"]
PIECES += ["1", "12", "123", "1234", "1234567", "٣٤٥", "Ⅻ", "½", "¹²³"]
PIECES += ["!", "?!", "...", "//", "/\n", "</a>", '{"k": [1, 2]}', "->", "#", "@@", "\\"]
PIECES += ["\x00", "\x01", "\x7f", "\x1b[0m", "\u200b", "\ufeff", "\U000e0001"]
PIECES += ["<|endoftext|>", "<|im_start|>", "<|fim_prefix|>", "<|ENDOFTEXT|>", "<|endoftext"]
PIECES += ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "❤️", "\U0001f3f3\ufe0f\u200d\U0001f308"]


def generated(seed: int = 1234, count: int = 1500) -> list[str]:
    """Random strings mixing words, contractions, digits, white space, marks, emoji, controls."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 40)):
            roll = rng.random()
            if roll < 0.35:
                parts.append(rng.choice(WORDS) + rng.choice(["", " ", "  "]))
            elif roll < 0.8:
                parts.append(rng.choice(PIECES))
            else:
                cp = rng.choice([rng.randint(0, 0x2FF), rng.randint(0x300, 0xFFFF)])
                cp = rng.randint(0, 0x10FFFF) if roll > 0.9 else cp
                parts.append(chr(cp) if not 0xD800 <= cp < 0xE000 else "x")
        texts.append("".join(parts))
    texts += ["", " ", "\n", "a", " a", "a ", "   x", "x   ", "x \n y", "\r", "'", "'s", "Hello'S"]
    return texts


def repo_texts() -> list[str]:
    paths = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "docs").rglob("*.md"))
    return [p.read_text(encoding="utf-8") for p in paths]


@pytest.fixture(scope="module", params=ENCODINGS)
def pair(request: pytest.FixtureRequest) -> tuple[bpe.Counter, object]:
    counter = compact_tokenizer(request.param)
    assert counter is not None
    return counter, rust_tokenizer(request.param)


def test_tokenizer_uses_the_c_counter_for_both_encodings() -> None:
    assert module is not None
    for name in ENCODINGS:
        assert isinstance(bpe.tokenizer(name), module.Encoder)
    assert not isinstance(bpe.tokenizer("voyage3_base"), module.Encoder)  # Rust counts it


def test_counts_and_pieces_are_the_references_on_generated_text(pair: tuple) -> None:
    counter, ref = pair
    for text in generated():
        assert counter.pretokenize(text) == ref.pretokenize(text), repr(text)
        assert counter.count(text) == ref.count(text), repr(text)


def test_counts_are_the_references_on_the_repositorys_files(pair: tuple) -> None:
    counter, ref = pair
    for text in repo_texts():
        assert counter.count(text) == ref.count(text), text[:80]
        for paragraph in text.split("\n\n"):
            assert counter.count(paragraph) == ref.count(paragraph), paragraph[:80]


@pytest.mark.parametrize("context", ["a{}b ", "A{}a!", " {}'s", "x'{}", "x'{}e ", "x'l{}", "x'r{}"])
def test_every_code_point_is_classed_as_bpe_openais_regex_does(pair: tuple, context: str) -> None:
    """Unicode 16.0 tables (the regex crate's); the contexts exercise letter, upper/lower,
    contraction and case-folding classes (which code points fold to s, t, m, d, r, v, e, l)."""
    counter, ref = pair
    points = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    for start in range(0, len(points), 128):
        text = "".join(context.format(chr(cp)) for cp in points[start : start + 128])
        assert counter.pretokenize(text) == ref.pretokenize(text), hex(points[start])


@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000,
        "".join(random.Random(5).choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", k=100_000)),
        "".join(chr(random.Random(6).randint(0x4E00, 0x9FA5)) for _ in range(30_000)),
        "9" * 100_000,
        " " * 100_000 + "x",
        "!" * 100_000,
        "\u0301" * 50_000,
        "ab" * 50_000,
    ],
    ids=["a", "letters", "cjk", "digits", "spaces", "punctuation", "marks", "ab"],
)
def test_hostile_long_pieces_are_counted_exactly(pair: tuple, text: str) -> None:
    counter, ref = pair
    assert counter.count(text) == ref.count(text)


def test_bad_input_raises_what_bpe_openai_raises(pair: tuple) -> None:
    counter, ref = pair
    for text in ["a\ud800b", "\udfff", "x" * 5000 + "\ud83d"]:
        with pytest.raises(UnicodeEncodeError):
            ref.count(text)
        with pytest.raises(UnicodeEncodeError):
            counter.count(text)
    with pytest.raises(TypeError):
        counter.count(b"bytes")
    with pytest.raises(TypeError):
        counter.count(None)
    assert counter.count("") == 0


def test_the_table_holds_every_rank_of_the_file() -> None:
    assert module is not None
    for name in ENCODINGS:
        raw = gzip.decompress(rank_file(name).read_bytes())
        counter = module.Encoder(raw, name)
        for line in raw.splitlines():
            token, rank = line.split()
            assert counter.rank(base64.b64decode(token)) == int(rank)
        assert counter.rank(b"") is None
        assert counter.rank(b"\xff" * 300) is None
        assert counter.table_bytes < 5 * 2**20


def test_malformed_rank_files_are_refused() -> None:
    assert module is not None
    for raw in [
        b"",
        b"YQ==",
        b"YQ== x",
        b"!!!! 1",
        b"YQ== 0\nYQ== 1",
        b"YQ== 0\nYg== 0",
        b"Y=Q= 0",
    ]:
        with pytest.raises(ValueError):
            module.Encoder(raw, "o200k_base")
    with pytest.raises(ValueError):
        module.Encoder(b"YQ== 0", "gpt2")
    unready = module.Encoder.__new__(module.Encoder)
    with pytest.raises(RuntimeError):
        unready.count("x")


def test_without_the_extension_bpe_openai_counts() -> None:
    code = (
        "import sys\n"
        "sys.modules['farebox.billing._bpecount'] = None  # as if it was never compiled\n"
        "from farebox.billing.bpe import tokenizer\n"
        "for name in ('o200k_base', 'cl100k_base'):\n"
        "    counter = tokenizer(name)\n"
        "    assert type(counter).__module__ == 'bpe_openai._bindings', type(counter)\n"
        "    assert counter.count('hello world') == 2\n"
        "print('ok')\n"
    )
    out = run_python(code)
    assert out.stdout.strip() == "ok"
    assert "was not built" in out.stderr
