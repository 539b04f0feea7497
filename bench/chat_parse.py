"""CPU of reading a chat request (parse, validate, count tokens: `parse_chat`) for a short and
a long conversation, with `orjson.loads` of the same bytes as the baseline measured in the same
run; and the validation alone (`read_fields`, the pydantic model) against the hand-written checks
it replaced (kept below as `hand_checks`), interleaved in the same process. The minimum of the
runs is reported: on a shared machine the other runs measure the neighbours.

    .venv/bin/python bench/chat_parse.py [--runs 15]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import orjson

from farebox.catalog.loader import catalog_from_dict
from farebox.chat.fields import read_fields
from farebox.chat.request import parse_chat
from farebox.errors import InvalidRequest

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _positive_int(body: dict[str, Any], name: str, upper: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be a whole number", param=name)
    if value < 1:
        raise InvalidRequest(f"{name} must be at least 1", param=name)
    if value > upper:
        raise InvalidRequest(f"{name} must be at most {upper} for this model", param=name)
    return value


def hand_checks(body: dict[str, Any]) -> None:
    """The chat reader's checks before the wire model (main at 4f1502d, chat/request.py)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array of messages", param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = msg.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequest("bad role", param=f"messages[{i}].role")
        content = msg.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest("bad content", param=f"messages[{i}].content")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream must be true or false", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("stream_options must be an object", param="stream_options")
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    _positive_int(body, field, 4096)
    _positive_int(body, "n", 8)


CATALOG = {
    "providers": {"up": {"kind": "openai", "base_url": "http://127.0.0.1:9", "api_key_env": "K"}},
    "models": {
        "fake-gpt": {
            "type": "chat",
            "provider": "Bench",
            "date_added": "2026-01-01",
            "context": 128000,
            "max_output": 4096,
            "tokenizer": "cl100k_base",
            "price": {"input_per_1m": "1", "output_per_1m": "2"},
            "routes": [{"provider": "up", "model": "fake-gpt"}],
        }
    },
}
SHORT = {
    "model": "fake-gpt",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello in five words."},
    ],
    "max_tokens": 64,
    "temperature": 0.2,
}
LONG = {
    "model": "fake-gpt",
    "messages": [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "lorem ipsum dolor " * 40}
        for i in range(100)
    ],
    "max_tokens": 256,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def per_call_us(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    catalog = catalog_from_dict(CATALOG, env={"K": "k"})
    for name, body, number in (("short", SHORT, 5000), ("long", LONG, 300)):
        raw = orjson.dumps(body)
        parse_chat(raw, catalog)  # warm the tokenizer
        reads, loads, models, hands = [], [], [], []
        for _ in range(args.runs):
            reads.append(per_call_us(lambda raw=raw: parse_chat(raw, catalog), number))
            loads.append(per_call_us(lambda raw=raw: orjson.loads(raw), number))
            models.append(per_call_us(lambda body=body: read_fields(body), number * 4))
            hands.append(per_call_us(lambda body=body: hand_checks(body), number * 4))
        read, load, model, hand = min(reads), min(loads), min(models), min(hands)
        print(
            f"{name:5} ({len(raw)} bytes): parse_chat {read:7.1f} µs (orjson.loads {load:6.1f} µs,"
            f" ratio {read / load:5.2f}); validation: model {model:6.1f} µs, hand-written "
            f"{hand:6.1f} µs, ratio {model / hand:4.2f}; model - hand = "
            f"{(model - hand) / read:+.1%} of parse_chat"
        )


if __name__ == "__main__":
    main()
