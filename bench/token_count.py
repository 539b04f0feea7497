"""Token counting: the C counter (billing/_bpecount.c) beside bpe_openai's Rust `count()`.

    python bench/token_count.py                  # per-call time of each, both encodings
    python bench/token_count.py --corpus FILE    # also compare counts on a pickled list of strs

Each case has 7 rounds of 40 distinct texts (a cache of whole texts never hits); the time per
call is the best round's mean, after a warm-up call. Cases: 7tok = "What is the capital of
France0?"-style prompts, 181tok = 800 characters of our docs' English, 9000ch = 9,000
characters of it, cjk2000 = 2,000 random CJK ideographs (one piece), zh2000 = 2,000 characters
of common ideographs in runs of 4-25 between punctuation (prose-like), rand100k = 100,000
random ASCII letters, a100k = 'a' * ~100,000 (one piece), dig100k = 100,000 random digits.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

from farebox.billing.bpe import compact_tokenizer, rust_tokenizer

ROOT = Path(__file__).resolve().parents[1]
ENCODINGS = ("o200k_base", "cl100k_base")


def cases() -> dict[str, list[str]]:
    docs = (ROOT / "docs/operators/billing.md").read_text() + (
        ROOT / "docs/customers/pay-per-request.md"
    ).read_text()
    words = re.sub(r"\s+", " ", re.sub(r"[`#|<>*\[\]()!-]", " ", docs)).split(" ")

    def english(size: int, i: int) -> str:
        text = " ".join(words[i * 7 :])
        return (text + " " + text)[:size]

    def chars(low: int, high: int, size: int, seed: int) -> str:
        rng = random.Random(seed)
        return "".join(chr(rng.randint(low, high)) for _ in range(size))

    def prose(seed: int) -> str:
        rng, out = random.Random(seed), ""
        while len(out) < 2000:
            out += chars(0x4E00, 0x4E00 + 799, rng.randint(4, 25), rng.random()) + rng.choice(
                "，。、"
            )
        return out[:2000]

    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n = range(280)
    return {
        "7tok": [
            f"What is the capital of {w}{i}?" for i in range(35) for w in ["France", "Spain"] * 4
        ],
        "181tok": [english(800, i) for i in n],
        "9000ch": [english(9000, i) for i in n],
        "cjk2000": [chars(0x4E00, 0x9FA5, 2000, i) for i in n],
        "zh2000": [prose(i) for i in n],
        "rand100k": ["".join(random.Random(1000 + i).choices(letters, k=100_000)) for i in n],
        "a100k": ["a" * (100_000 - i) for i in n],
        "dig100k": ["".join(random.Random(i).choices("0123456789", k=100_000)) for i in n],
    }


def per_call_us(count: Callable[[str], int], texts: list[str], rounds: int = 7) -> float:
    count("warm up: 日本語 and English, 12345 !!")
    size = len(texts) // rounds
    best = float("inf")
    for k in range(rounds):
        chunk = texts[k * size : (k + 1) * size]
        start = time.perf_counter()
        for text in chunk:
            count(text)
        best = min(best, time.perf_counter() - start)
    return best / size * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a pickled list of strs to compare counts on")
    args = parser.parse_args()
    texts = cases()
    for name in ENCODINGS:
        ours, ref = compact_tokenizer(name), rust_tokenizer(name)
        if ours is None:
            raise SystemExit("the C counter was not built (pip install --no-deps -e .)")
        row: dict[str, object] = {"encoding": name}
        if args.corpus:
            corpus = pickle.loads(args.corpus.read_bytes())
            row["corpus_texts"] = len(corpus)
            row["mismatches"] = sum(ours.count(t) != ref.count(t) for t in corpus)
        for case, batch in texts.items():
            assert all(ours.count(t) == ref.count(t) for t in batch[:3]), case
            r = per_call_us(ref.count, batch)
            c = per_call_us(ours.count, batch)
            r = min(r, per_call_us(ref.count, batch))
            row[case] = {
                "bpe_openai_us": round(r, 2),
                "c_us": round(c, 2),
                "ratio": round(c / r, 2),
            }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
