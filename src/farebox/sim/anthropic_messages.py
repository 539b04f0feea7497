"""Anthropic Messages (`POST /v1/messages`, `POST /v1/messages/count_tokens`): stream and not,
text, tool use, thinking (signed, verified when sent back) and redacted thinking, prompt caching.

Auth: `x-api-key` or `Authorization: Bearer`, and `anthropic-version` is required. Errors use
Anthropic's envelope. The same faults as the OpenAI endpoints apply (body `sim` or URL prefix).

What it answers:
- a `tool_use` when the request offers tools and either `tool_choice` is `any`/`tool` or the
  `tool_call` fault is set, unless the last user turn carries a `tool_result` (so an agent loop
  ends). The tool is the named one, else the first whose name appears in the prompt, else the
  first. Its input fills the schema's required properties (all, if none are required): strings
  get the prompt's first backtick-quoted span, else its first five words; numbers its word
  count; booleans true.
- otherwise text: the prompt's words cycled (as the OpenAI endpoint), `output_tokens` long.
- with `thinking` enabled or adaptive, a thinking block first, signed; `display: "omitted"` sends
  it empty with the same signature. The prompt `REDACTED_TRIGGER` adds a redacted_thinking block.
  Thinking blocks sent back must carry a valid signature (empty text is fine), as Anthropic checks.
- reasoning (`sim.reasoning_tokens=N`): the model thinks N tokens, billed in `output_tokens`
  but never shown in full, as Claude's summarized thinking: with `thinking` on, the thinking
  block carries its short summary; with it off, the thinking is hidden entirely (a model that
  always reasons). It stops at `thinking.budget_tokens` (when enabled) and at `max_tokens`,
  which bounds thinking and answer together (`stop_reason: "max_tokens"` when the answer is cut).
  `sim.ignore_cap=true` ignores both (an upstream billing beyond what it was sent).
- with a `web_search_*` server tool: the searches, their results and a cited answer, billed in
  `usage.server_tool_use` (see farebox.sim.web_search).
- usage: `input_tokens` counts the text of system, messages and tools (o200k); the prefix up to
  the last `cache_control` breakpoint is written to the cache the first time
  (`cache_creation_input_tokens`) and read after (`cache_read_input_tokens`).

The prompt is the last user text block that is not a `<system-reminder>`, or a tool result's text.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from farebox.sim.anthropic_reply import Reply, stream_reply, whole_message
from farebox.sim.faults import Faults, FaultSpecError, parse_body, parse_prefix
from farebox.sim.gate import admit, pace
from farebox.sim.openai_base import json_response, read_json_object
from farebox.sim.state import SIM_STATE, SimState
from farebox.sim.tokens import Tokenizer
from farebox.sim.web_search import anthropic_searches, search_tool

PATHS = ("/v1/messages",)
ENDPOINT = "messages"
COUNT_ENDPOINT = "messages.count_tokens"
REDACTED_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253"
)
"""Anthropic's documented test string that makes the model return a redacted_thinking block."""
THINKING_TOKENS = 8
_SECRET = b"farebox-sim-thinking"
_BACKTICKS = re.compile(r"`([^`]+)`")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
    503: "overloaded_error",
}


@dataclass
class AnthropicSimState:
    """Prompt-cache prefixes seen, and the last requests (headers and body) for tests to read."""

    cached: set[str] = field(default_factory=set)
    recent: deque[tuple[dict[str, str], dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=64)
    )


ANTHROPIC_STATE = web.AppKey("farebox_sim_anthropic", AnthropicSimState)


class BadRequest(ValueError):
    pass


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def error_response(status: int, message: str) -> web.Response:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    headers = {"retry-after": "1"} if status in (429, 529, 503) else None
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _check_headers(request: web.Request, state: SimState) -> web.Response | None:
    key = request.headers.get("x-api-key", "")
    auth = request.headers.get("Authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    if not key:
        return error_response(401, "x-api-key header is required")
    if state.config.api_key is not None and key != state.config.api_key:
        return error_response(401, "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return error_response(400, "anthropic-version: header is required")
    return None


def sign(thinking: str) -> str:
    """A signature that carries the thinking text (so omitted thinking still verifies)."""
    mac = hashlib.sha256(_SECRET + thinking.encode()).hexdigest()[:16]
    return base64.b64encode(orjson.dumps({"t": thinking, "m": mac})).decode()


def _signed_text(signature: object) -> str | None:
    if not isinstance(signature, str) or not signature:
        return None
    try:
        data = orjson.loads(base64.b64decode(signature, validate=True))
        text, mac = data["t"], data["m"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
    good = hashlib.sha256(_SECRET + text.encode()).hexdigest()[:16]
    return text if isinstance(text, str) and mac == good else None


def _redacted_data(prompt: str) -> str:
    return base64.b64encode(b"sim-redacted:" + hashlib.sha256(prompt.encode()).digest()).decode()


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            out.append(block["text"])
        elif block.get("type") == "tool_result":
            out.extend(_texts(block.get("content")))
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            out.append(block["thinking"])
        elif block.get("type") == "tool_use":
            out.append(orjson.dumps(block.get("input", {})).decode())
    return out


def _validate(body: dict[str, Any]) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (an integer >= 1)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if type(budget) is not int or budget < 1024 or budget >= max_tokens:
            raise BadRequest("thinking.budget_tokens: must be >= 1024 and less than max_tokens")
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not 0 <= temperature <= 1:
        raise BadRequest("temperature: Input should be less than or equal to 1")
    pending: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "user",
            "assistant",
            "system",
        ):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if message["role"] == "user":
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending - results:
                raise BadRequest(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(sorted(pending - results))}"
                )
            if results - pending:
                raise BadRequest(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {', '.join(sorted(str(r) for r in results - pending))}"
                )
            pending = set()
        elif message["role"] == "assistant":
            pending = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                kind = block.get("type")
                if kind == "thinking":
                    signed = _signed_text(block.get("signature"))
                    if signed is None or block.get("thinking") not in ("", signed):
                        raise BadRequest(
                            f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        )
                elif kind == "redacted_thinking" and not base64.b64decode(
                    block.get("data", ""), validate=False
                ).startswith(b"sim-redacted:"):
                    raise BadRequest(f"messages.{i}.content.{j}: Invalid `redacted_thinking` data")


def _prompt(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        for text in reversed(_texts(message.get("content"))):
            if text.strip() and not text.lstrip().startswith("<system-reminder>"):
                return text
    return ""


def _cache_prefix(body: dict[str, Any]) -> list[str]:
    """Texts up to and including the last block marked with cache_control."""
    texts: list[str] = []
    marked = 0
    sections: list[object] = [body.get("tools") or [], body.get("system") or []]
    sections += [m.get("content") for m in body["messages"] if isinstance(m, dict)]
    for section in sections:
        for block in section if isinstance(section, list) else [section]:
            if isinstance(block, dict):
                texts.extend(
                    _texts([block]) if "name" not in block else [orjson.dumps(block).decode()]
                )
                if block.get("cache_control"):
                    marked = len(texts)
            elif isinstance(block, str):
                texts.append(block)
    return texts[:marked]


def _input_tokens(tok: Tokenizer, body: dict[str, Any]) -> int:
    total = 0
    for tool in body.get("tools") or ():
        total += tok.count(orjson.dumps(tool).decode())
    for text in _texts(body.get("system")):
        total += tok.count(text)
    for message in body["messages"]:
        total += 3 + sum(tok.count(t) for t in _texts(message.get("content")))
    return total


def _usage(sim: AnthropicSimState, tok: Tokenizer, body: dict[str, Any]) -> dict[str, int]:
    total = _input_tokens(tok, body)
    prefix = _cache_prefix(body)
    cached = min(sum(tok.count(t) for t in prefix), total)
    usage = {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    if prefix:
        digest = hashlib.sha256(orjson.dumps(prefix)).hexdigest()
        key = "cache_read_input_tokens" if digest in sim.cached else "cache_creation_input_tokens"
        sim.cached.add(digest)
        usage[key] = cached
        usage["input_tokens"] = total - cached
    return usage


def _chosen_tool(body: dict[str, Any], faults: Faults, prompt: str) -> dict[str, Any] | None:
    tools = [
        t
        for t in body.get("tools") or ()
        if isinstance(t, dict) and "name" in t and t.get("type") in (None, "custom")
    ]
    messages = body["messages"]
    last = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    answered = isinstance(last, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last
    )
    choice = _dict(body.get("tool_choice"))
    if not tools or answered or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice.get("name")), None)
    if choice.get("type") != "any" and not faults.tool_call:
        return None
    return next((t for t in tools if t["name"] in prompt), tools[0])


def _tool_input(tool: dict[str, Any], prompt: str) -> dict[str, Any]:
    schema = _dict(tool.get("input_schema"))
    properties = _dict(schema.get("properties"))
    required = schema.get("required")
    names = [n for n in properties if not isinstance(required, list) or n in required]
    quoted = _BACKTICKS.search(prompt)
    phrase = quoted.group(1) if quoted else " ".join(prompt.split()[:5]) or "sim"
    values: dict[str, Any] = {}
    for name in names:
        kind = properties[name].get("type") if isinstance(properties[name], dict) else None
        if kind in ("integer", "number"):
            values[name] = len(prompt.split())
        elif kind == "boolean":
            values[name] = True
        elif kind == "array":
            values[name] = [phrase]
        elif kind == "object":
            values[name] = {}
        else:
            values[name] = phrase
    return values if names else {"input": phrase}


def _answer(state: SimState, sim: AnthropicSimState, body: dict[str, Any], faults: Faults) -> Reply:
    tok = state.tokenizer
    prompt = _prompt(body["messages"])
    blocks: list[dict[str, Any]] = []
    counts: list[int] = []
    thinking = _dict(body.get("thinking"))
    thinks = thinking.get("type") in ("enabled", "adaptive")
    max_tokens: int = body["max_tokens"]
    thought_tokens = _reasoning(faults, thinking, max_tokens)
    hidden = 0  # billed thinking that no block shows
    if thinks:
        thought = state.textgen.complete("Thinking about " + prompt, THINKING_TOKENS).text
        shown = "" if thinking.get("display") == "omitted" else thought
        blocks.append({"type": "thinking", "thinking": shown, "signature": sign(thought)})
        counts.append(tok.count(thought) if thought_tokens is None else thought_tokens)
        if REDACTED_TRIGGER in prompt:
            blocks.append({"type": "redacted_thinking", "data": _redacted_data(prompt)})
            counts.append(THINKING_TOKENS)
    elif thought_tokens is not None:
        hidden = thought_tokens
    searched = search_tool(body)
    citations: list[dict[str, Any]] = []
    searches = pages = 0
    if searched is not None:
        found = anthropic_searches(searched, prompt, faults.web_searches, state.next_id(), tok)
        search_blocks, search_counts, citations, searches, pages = found
        blocks += search_blocks
        counts += search_counts
    budget = max_tokens - sum(counts) - hidden
    if faults.ignore_cap:
        budget = 1 << 30
    tool = _chosen_tool(body, faults, prompt)
    if tool is not None:
        arguments = _tool_input(tool, prompt)
        number = state.next_id()
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_sim{number:010x}",
                "name": tool["name"],
                "input": arguments,
            }
        )
        counts.append(tok.count(tool["name"]) + tok.count(orjson.dumps(arguments).decode()))
        stop = "tool_use"
    else:
        natural = state.config.default_output_tokens
        if faults.output_tokens is not None:
            natural = faults.output_tokens
        limit = max(min(natural, budget), 0)
        text = state.textgen.complete(prompt, limit)
        blocks.append({"type": "text", "text": text.text})
        if citations:
            blocks[-1]["citations"] = citations
        counts.append(text.tokens)
        stop = "max_tokens" if limit < natural else "end_turn"
        stops = body.get("stop_sequences")
        for sequence in stops if isinstance(stops, list) else ():
            if isinstance(sequence, str) and sequence and sequence in text.text:
                cut = text.text[: text.text.index(sequence)]
                blocks[-1]["text"] = cut
                counts[-1] = tok.count(cut)
                stop = "stop_sequence:" + sequence
                break
    usage: dict[str, Any] = {**_usage(sim, tok, body), "output_tokens": sum(counts) + hidden}
    usage["input_tokens"] += pages
    if searches:
        usage["server_tool_use"] = {"web_search_requests": searches}
    reply_id = f"msg_sim{state.next_id():012x}"
    return Reply(reply_id, body["model"], blocks, counts, stop, usage, hidden)


def _reasoning(faults: Faults, thinking: dict[str, Any], max_tokens: int) -> int | None:
    """Thinking tokens billed in reasoning mode (None when the mode is off): as many as asked,
    at most the enabled thinking budget and `max_tokens` (unless the cap is ignored)."""
    if faults.reasoning_tokens is None:
        return None
    if faults.ignore_cap:
        return faults.reasoning_tokens
    limit = max_tokens
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled" and isinstance(budget, int):
        limit = min(limit, budget)
    return min(faults.reasoning_tokens, limit)


async def _read(request: web.Request) -> tuple[SimState, Faults, dict[str, Any]] | web.Response:
    state = request.app[SIM_STATE]
    prefix = request.match_info.get("spec", "")
    endpoint = COUNT_ENDPOINT if request.path.endswith("/count_tokens") else ENDPOINT
    seen = state.stats.record(prefix, endpoint)
    denied = _check_headers(request, state)
    if denied is not None:
        return denied
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return error_response(400, "The request body is not a JSON object.")
    try:
        faults = parse_prefix(prefix).merged(parse_body(body.get("sim")))
    except FaultSpecError as exc:
        return error_response(400, str(exc))
    failure = await admit(state, faults, seen)
    if failure is not None:
        return error_response(failure.status, failure.message)
    return state, faults, body


async def messages(request: web.Request) -> web.StreamResponse:
    """`POST [/sim/<faults>]/v1/messages`."""
    read = await _read(request)
    if isinstance(read, web.Response):
        return read
    state, faults, body = read
    sim = request.app[ANTHROPIC_STATE]
    headers = {
        k.lower(): v for k, v in request.headers.items() if k.lower().startswith("anthropic")
    }
    sim.recent.append(({**headers, "query": request.query_string}, body))
    state.receive(ENDPOINT, body, request.headers.get("X-Request-Id"))
    try:
        _validate(body)
    except BadRequest as exc:
        return error_response(400, str(exc))
    reply = _answer(state, sim, body, faults)
    timing = pace(state.config, faults)
    if body.get("stream") is True:
        return await stream_reply(
            request, state, reply, faults, timing.after_hidden(reply.hidden_tokens)
        )
    delay = timing.body_delay_s(reply.usage["output_tokens"])
    if delay:
        await asyncio.sleep(delay)
    return json_response(whole_message(reply), {"request-id": reply.id})


async def count_tokens(request: web.Request) -> web.Response:
    """`POST [/sim/<faults>]/v1/messages/count_tokens`."""
    read = await _read(request)
    if isinstance(read, web.Response):
        return read
    state, _, body = read
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return error_response(400, "messages: at least one message is required")
    return json_response({"input_tokens": _input_tokens(state.tokenizer, body)})


def setup(app: web.Application) -> None:
    """Give a new simulator app this module's state."""
    app[ANTHROPIC_STATE] = AnthropicSimState()


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/v1/messages", messages),
    web.post("/v1/messages/count_tokens", count_tokens),
)
