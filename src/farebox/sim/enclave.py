"""A simulated confidential-inference enclave: EHBP chat completions, attested, with faults.

It holds a real HPKE key, opens requests sealed to it (EHBP, SPEC.md), answers like the chat
simulator and seals the answer frame by frame (one frame per SSE event). Asked with
`X-Tinfoil-Request-Usage-Metrics: true` it reports usage as Tinfoil's enclaves do: a header on
whole responses, an HTTP trailer on streams. aiohttp's server cannot send trailers, so this is a
small HTTP/1.1 server of its own on h11.

    GET  /.well-known/hpke-keys   application/ohttp-keys (one 41-byte key config)
    GET  /attestation             the attestation bundle (farebox.private.attestation)
    POST /v1/chat/completions     EHBP; 422 problem+json for a request sealed to another key
    POST /sim/enclave/rotate      a new HPKE key (clients holding the old one get 422)
    GET  /sim/enclave/stats       what it was asked
    GET  /health

Faults go in the sealed body's `sim` object (the chat simulator's keys, e.g. `status`,
`disconnect_after`, `output_tokens`), plus `drop_trailer` (a stream ends without its usage
trailer), `drop_usage` (no usage header or trailer) and `stall_after` (n events, then silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import orjson
from aiohttp import web

from farebox.private.ehbp import (
    ENCAPSULATED_KEY_HEADER,
    KEY_CONFIG_PROBLEM,
    KEYS_MEDIA_TYPE,
    KEYS_PATH,
    PROBLEM_JSON,
    RESPONSE_NONCE_HEADER,
    EhbpError,
    KeyConfigMismatch,
)
from farebox.private.ehbp_seal import ResponseSealer
from farebox.private.usage import (
    ENCLAVE_MODEL_HEADER,
    USAGE_HEADER,
    USAGE_REQUEST_HEADER,
    usage_line,
)
from farebox.sim.config import SimConfig
from farebox.sim.enclave_identity import EnclaveIdentity
from farebox.sim.faults import Faults, FaultSpecError, parse_body
from farebox.sim.gate import Pace, admit, pace
from farebox.sim.openai_base import error_body
from farebox.sim.openai_chat import (
    Answer,
    BadRequest,
    chat_answer,
    closing_events,
    completion_json,
    content_events,
    validate_chat,
)
from farebox.sim.state import SimState

CHAT_PATH = "/v1/chat/completions"
ATTESTATION_PATH = "/attestation"
MAX_BODY_BYTES = 16 * 1024 * 1024
STALL_S = 3600.0
_ENCLAVE_FAULTS = ("drop_trailer", "drop_usage", "stall_after")


@dataclass
class EnclaveStats:
    chat_requests: int = 0  # POSTs to the chat path
    opened: int = 0  # requests it could decrypt
    key_mismatch: int = 0  # 422s
    malformed: int = 0  # 400s before decryption

    def snapshot(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True, slots=True)
class EnclaveFaults:
    drop_trailer: bool = False
    drop_usage: bool = False
    stall_after: int | None = None


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    host: str = ""


@dataclass
class _Exchange:
    """One response being written on a connection."""

    conn: h11.Connection
    writer: asyncio.StreamWriter
    closed: bool = field(default=False)

    async def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def whole(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        await self.send(
            h11.Response(status_code=status, headers=[*headers, ("content-length", str(len(body)))])
        )
        await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    def cut(self) -> None:
        """Drop the connection mid-body: the client sees a response cut short."""
        self.closed = True
        self.writer.close()


def _enclave_faults(sim: object) -> tuple[EnclaveFaults, object]:
    if not isinstance(sim, dict):
        return EnclaveFaults(), sim
    rest = {k: v for k, v in sim.items() if k not in _ENCLAVE_FAULTS}
    stall = sim.get("stall_after")
    if stall is not None and (isinstance(stall, bool) or not isinstance(stall, int) or stall < 0):
        raise FaultSpecError("sim option 'stall_after' must be a whole number >= 0")
    return (
        EnclaveFaults(
            drop_trailer=sim.get("drop_trailer") is True,
            drop_usage=sim.get("drop_usage") is True,
            stall_after=stall,
        ),
        rest,
    )


class SimEnclave:
    """The enclave's request handling; `serve` runs one connection."""

    def __init__(
        self, config: SimConfig, identity: EnclaveIdentity, models: tuple[str, ...] = ()
    ) -> None:
        self.state = SimState(config)
        self.identity = identity
        self.models = models  # served enclave model ids; () serves any
        self.stats = EnclaveStats()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        exchange = _Exchange(conn, writer)
        try:
            while not exchange.closed:
                request = await _read_request(conn, reader)
                if request is None:
                    return
                await self._dispatch(exchange, request)
                if exchange.closed or conn.our_state is not h11.DONE:
                    return
                if conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, exchange: _Exchange, request: _Request) -> None:
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path == KEYS_PATH:
            body = self.identity.key.config.encode()
            await exchange.whole(200, [("content-type", KEYS_MEDIA_TYPE)], body)
        elif request.method == "GET" and path == ATTESTATION_PATH:
            body = self.identity.bundle(request.host)
            await exchange.whole(200, [("content-type", "application/json")], body)
        elif request.method == "POST" and path == CHAT_PATH:
            await self._chat(exchange, request)
        elif request.method == "POST" and path == "/sim/enclave/rotate":
            self.identity.rotate()
            body = orjson.dumps({"key_id": self.identity.key.key_id})
            await exchange.whole(200, [("content-type", "application/json")], body)
        elif request.method == "GET" and path == "/sim/enclave/stats":
            body = orjson.dumps(self.stats.snapshot())
            await exchange.whole(200, [("content-type", "application/json")], body)
        elif request.method == "GET" and path == "/health":
            await exchange.whole(200, [("content-type", "application/json")], b'{"status":"ok"}')
        else:
            await exchange.whole(
                404, [("content-type", "application/json")], error_body(404, "no such path")
            )

    async def _chat(self, exchange: _Exchange, request: _Request) -> None:
        self.stats.chat_requests += 1
        enc_hex = request.headers.get(ENCAPSULATED_KEY_HEADER.lower(), "")
        try:
            if not enc_hex or not request.body:
                raise EhbpError("this enclave accepts only EHBP-sealed requests")
            enc = bytes.fromhex(enc_hex)
            plaintext, secret = self.identity.key.open_request(enc, request.body)
        except KeyConfigMismatch:
            self.stats.key_mismatch += 1
            problem = orjson.dumps(
                {"type": KEY_CONFIG_PROBLEM, "title": "key configuration mismatch"}
            )
            await exchange.whole(422, [("content-type", PROBLEM_JSON)], problem)
            return
        except (EhbpError, ValueError) as exc:
            self.stats.malformed += 1
            problem = orjson.dumps({"type": "about:blank", "title": f"bad EHBP request: {exc}"})
            await exchange.whole(400, [("content-type", PROBLEM_JSON)], problem)
            return
        self.stats.opened += 1
        sealer = ResponseSealer(secret, enc)
        try:
            body = orjson.loads(plaintext)
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            extra, sim = _enclave_faults(body.get("sim"))
            faults = parse_body(sim)
            validate_chat(body)
            routed = request.headers.get(ENCLAVE_MODEL_HEADER.lower())
            if routed is not None and routed != body["model"]:
                raise BadRequest(
                    f"This enclave route serves {routed!r}, not {body['model']!r}.", "model"
                )
            if self.models and body["model"] not in self.models:
                raise BadRequest(f"This enclave does not serve {body['model']!r}.", "model")
        except orjson.JSONDecodeError:
            await self._sealed_error(exchange, sealer, 400, "The request body is not JSON.")
            return
        except (FaultSpecError, BadRequest) as exc:
            await self._sealed_error(exchange, sealer, 400, str(exc))
            return
        failure = await admit(self.state, faults, self.stats.opened)
        if failure is not None:
            await self._sealed_error(exchange, sealer, failure.status, failure.message)
            return
        answer = chat_answer(self.state, body, faults)
        report = request.headers.get(USAGE_REQUEST_HEADER.lower(), "").lower() == "true"
        report = report and not extra.drop_usage
        line = usage_line(answer.prompt_tokens, answer.completion_tokens, answer.model)
        timing = pace(self.state.config, faults)
        if body.get("stream") is True:
            options = body.get("stream_options")
            with_usage = isinstance(options, dict) and options.get("include_usage") is True
            trailer = line if report and not extra.drop_trailer else None
            await self._stream(exchange, sealer, answer, faults, extra, timing, with_usage, trailer)
            return
        delay = timing.body_delay_s(answer.completion_tokens)
        if delay:
            await asyncio.sleep(delay)
        headers = [
            ("content-type", "application/json"),
            (RESPONSE_NONCE_HEADER, sealer.nonce_hex),
        ]
        if report:
            headers.append((USAGE_HEADER, line))
        await exchange.send(h11.Response(status_code=200, headers=headers))
        await exchange.send(h11.Data(data=sealer.seal(orjson.dumps(completion_json(answer)))))
        await exchange.send(h11.EndOfMessage())

    async def _sealed_error(
        self, exchange: _Exchange, sealer: ResponseSealer, status: int, message: str
    ) -> None:
        """Errors after decryption are sealed too (SPEC §5.2)."""
        headers = [("content-type", "application/json"), (RESPONSE_NONCE_HEADER, sealer.nonce_hex)]
        await exchange.send(h11.Response(status_code=status, headers=headers))
        await exchange.send(h11.Data(data=sealer.seal(error_body(status, message))))
        await exchange.send(h11.EndOfMessage())

    async def _stream(
        self,
        exchange: _Exchange,
        sealer: ResponseSealer,
        answer: Answer,
        faults: Faults,
        extra: EnclaveFaults,
        timing: Pace,
        with_usage: bool,
        trailer: str | None,
    ) -> None:
        events, tokens = content_events(answer, with_usage)
        closing = closing_events(answer, with_usage)
        events, tokens = events + closing, tokens + [0] * len(closing)
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            (RESPONSE_NONCE_HEADER, sealer.nonce_hex),
        ]
        if trailer is not None:
            headers.append(("trailer", USAGE_HEADER))
        await exchange.send(h11.Response(status_code=200, headers=headers))
        cut_at = faults.disconnect_after
        stall_at = extra.stall_after
        if timing.ttft_s:
            await asyncio.sleep(timing.ttft_s)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent_tokens = 0
        for index, (event, count) in enumerate(zip(events, tokens, strict=True)):
            if cut_at is not None and index >= cut_at:
                exchange.cut()
                return
            if stall_at is not None and index >= stall_at:
                await asyncio.sleep(STALL_S)
            if timing.tokens_per_second:
                delay = start + sent_tokens / timing.tokens_per_second - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await exchange.send(h11.Data(data=sealer.seal(event)))
            sent_tokens += count
        trailers = [(USAGE_HEADER, trailer)] if trailer is not None else []
        await exchange.send(h11.EndOfMessage(headers=trailers))


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> _Request | None:
    request: _Request | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and request is None:
                return None
            continue
        if isinstance(event, h11.Request):
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            request = _Request(
                method=event.method.decode(),
                path=event.target.decode("latin-1"),
                headers=headers,
                host=headers.get("host", ""),
            )
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY_BYTES:
                raise ConnectionError("request body over the enclave's limit")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            request.body = b"".join(chunks)
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None


@dataclass
class RunningEnclave:
    """A started enclave; `await close()` stops it."""

    server: asyncio.Server
    enclave: SimEnclave
    host: str
    port: int
    _tasks: set[asyncio.Task[None]]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def identity(self) -> EnclaveIdentity:
        return self.enclave.identity

    async def close(self) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def __aenter__(self) -> RunningEnclave:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_enclave(
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    identity: EnclaveIdentity | None = None,
    models: tuple[str, ...] = (),
) -> RunningEnclave:
    """Start a simulated enclave on `host:port` (0 picks a free port) in the running loop."""
    enclave = SimEnclave(config or SimConfig(), identity or EnclaveIdentity.generate(), models)
    tasks: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await enclave.serve(reader, writer)
        except asyncio.CancelledError:
            pass  # closing the enclave: the connection ends here
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(connected, host, port)
    bound = server.sockets[0].getsockname()[1]
    return RunningEnclave(server, enclave, host, bound, tasks)


def describe(enclave: RunningEnclave) -> dict[str, Any]:
    """What `farebox sim --enclave-port` prints at start."""
    return {
        "enclave_url": enclave.url,
        "measurement": enclave.identity.measurement,
        "hpke_key_id": enclave.identity.key.key_id,
    }


def attach_enclave(
    config: SimConfig, host: str, port: int, policy_path: Path | None
) -> Callable[[web.Application], None]:
    """Hooks that run an enclave beside a simulator app (`farebox sim --enclave-port`), and
    write its trust policy to `policy_path` once it listens."""
    key = web.AppKey("farebox_sim_enclave", RunningEnclave)

    async def start(app: web.Application) -> None:
        running = await start_enclave(config, host, port)
        app[key] = running
        if policy_path is not None:
            policy_path.write_bytes(running.identity.policy_json())
        print(orjson.dumps(describe(running)).decode(), file=sys.stderr, flush=True)

    async def stop(app: web.Application) -> None:
        await app[key].close()

    def setup(app: web.Application) -> None:
        app.on_startup.append(start)
        app.on_cleanup.append(stop)

    return setup
