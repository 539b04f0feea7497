"""Token counting with the real tokenizer."""

from __future__ import annotations

import bpe_openai

from farebox.billing.tokens import KNOWN_ENCODINGS, count_messages, count_text, encoder


def test_known_encodings_are_the_ones_bpe_openai_ships() -> None:
    assert sorted(KNOWN_ENCODINGS) == sorted(bpe_openai.list_encoding_names())


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
