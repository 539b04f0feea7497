"""A streamed answer reaches the customer whole and is billed exactly however the upstream's bytes
are cut into reads: whole, event by event, mid-event, byte by byte, with CRLF line ends, comments
and `"usage": null` in every chunk. The relay takes runs of whole plain events as one unparsed
block (chat/stream.py); these upstreams put every kind of boundary in its way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest

from farebox.billing.tokens import encoded_length, encoder

from support import (
    DB_KINDS,
    NANOS,
    Gateway,
    LoopThread,
    database_url,
    require_db,
    running_gateway,
)
from support import (
    test_catalog as catalog_of,
)

WORDS = ["Hel", "lo", ", ", "wörld", " — ", "ok", "\n", "bye"]
PROMPT_TOKENS = 9
COMPLETION_TOKENS = 11  # what the upstream reports (its own tokenizer): it is what is billed


def _events(crlf: bool, null_usage: bool, comment: bool, reported: bool = True) -> list[bytes]:
    head = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    extra = {"usage": None} if null_usage else {}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}], **extra}]
    chunks += [{**head, "choices": [{"index": 0, "delta": {"content": w}}], **extra} for w in WORDS]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
    if reported:
        chunks.append({**head, "choices": [], "usage": usage})
    end = b"\r\n\r\n" if crlf else b"\n\n"
    events = [b"data: " + orjson.dumps(c) + end for c in chunks]
    if comment:
        events.insert(3, b": keep-alive" + end)
    return [*events, b"data: [DONE]" + end]


class RawUpstream:
    """An OpenAI-like upstream on loopback that writes a fixed event stream in given pieces."""

    def __init__(self, events: list[bytes], piece: int | None) -> None:
        self.events = events
        self.piece = piece  # bytes per write; None: one event per write; 0: all at once

    def _pieces(self) -> list[bytes]:
        if self.piece is None:
            return self.events
        body = b"".join(self.events)
        if self.piece == 0:
            return [body]
        return [body[i : i + self.piece] for i in range(0, len(body), self.piece)]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                for piece in self._pieces():
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                    await asyncio.sleep(0)  # let each piece leave on its own
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module", params=DB_KINDS)
def relay(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, RawUpstream]]:
    """A gateway per database kind whose one provider is a RawUpstream (tests set its bytes)."""
    require_db(request.param)
    upstream = RawUpstream([], 0)
    thread = LoopThread()

    async def start() -> asyncio.AbstractServer:
        return await asyncio.start_server(upstream.handle, "127.0.0.1", 0)

    server = thread.run(start())
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        with (
            database_url(request.param, tmp_path_factory.mktemp("reads")) as db_url,
            running_gateway(db_url, catalog_of(url)) as gw,
        ):
            yield gw, upstream
    finally:
        server.close()
        thread.stop()


@pytest.mark.parametrize("piece", [0, None, 1, 7, 50], ids=["whole", "events", "1", "7", "50"])
@pytest.mark.parametrize(
    "shape",
    [
        (False, False, False),
        (True, False, False),
        (False, True, True),
        (False, False, False, False),
    ],
    ids=["lf", "crlf", "null-usage+comment", "no-usage"],
)
@pytest.mark.parametrize("max_tokens", [40, None], ids=["fully-paid", "metered"])
def test_every_cut_of_the_upstream_bytes_relays_and_bills_the_same(
    relay: tuple[Gateway, RawUpstream],
    piece: int | None,
    shape: tuple[bool, ...],
    max_tokens: int | None,
) -> None:
    gw, upstream = relay
    upstream.events = _events(*shape)
    upstream.piece = piece
    _check_one_stream(gw, max_tokens, reported=len(shape) < 4)


def _check_one_stream(gw: Gateway, max_tokens: int | None, reported: bool) -> None:
    credit_id, key = gw.create_account(1)
    body: dict[str, object] = {
        "model": "test-model",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    with gw.client() as c:
        r = c.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    blocks = [b for b in r.text.replace("\r\n", "\n").split("\n\n") if b.startswith("data: ")]
    assert blocks[-1] == "data: [DONE]" and blocks.count("data: [DONE]") == 1
    chunks = [orjson.loads(b[6:]) for b in blocks[:-1]]
    assert all(c["model"] == "test-model" for c in chunks)  # the catalog id, not the upstream's
    text = "".join(choice["delta"].get("content") or "" for c in chunks for choice in c["choices"])
    assert text == "".join(WORDS)
    usages = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usages) == 1 and chunks[-1]["usage"] is usages[0]  # ours, last; the upstream's gone
    usage = usages[0]
    if reported:
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
            PROMPT_TOKENS,
            COMPLETION_TOKENS,
        )
    else:  # counted by the gateway: every relayed word, whichever way it was relayed
        model = gw.services.catalog.models["test-model"]
        counted = encoded_length(encoder(model.tokenizer), "".join(WORDS))
        assert usage["completion_tokens"] == counted
    cost = usage["prompt_tokens"] * 1_000 + usage["completion_tokens"] * 2_000  # test prices
    assert round(usage["cost"] * NANOS) == cost
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    assert NANOS - balance == cost == gw.history_total_nanos(credit_id)
    assert gw.check().ok
