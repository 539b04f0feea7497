"""OpenAI chat completions (`POST /v1/chat/completions`): stream and not, text and tool calls.

Usage: `prompt_tokens` = 3 (reply priming) + for each message 3 + the tokens of its text content
(a string, or the `text` of its content parts), its `name` and its tool calls' names and
arguments; tool definitions are not counted. `completion_tokens` = the tokens of the emitted text
(see `farebox.sim.textgen`), or for a tool call those of the function name plus its arguments;
streamed chunks carry pieces whose token counts add up to it.

Reasoning (`sim.reasoning_tokens=N`): the model first thinks N hidden tokens, as OpenAI's
reasoning models do: they never appear in the reply or the stream (only as time before the first
token), and count in `completion_tokens` and `completion_tokens_details.reasoning_tokens`. The cap
(`max_completion_tokens`, else `max_tokens`) bounds thinking and answer together: the thinking
stops at the cap and the answer gets what is left (`finish_reason: "length"` when cut).
`sim.ignore_cap=true` makes the model ignore the cap (an upstream billing beyond what it was sent,
for operator-loss tests). With `web_search_options` the answer cites web pages, as OpenAI's
search models do (see farebox.sim.web_search). Every request body is kept for `GET /sim/requests`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from farebox.sim.faults import Faults, FaultSpecError, parse_body, parse_prefix
from farebox.sim.gate import Pace, admit, pace
from farebox.sim.openai_base import (
    check_auth,
    error_body,
    error_response,
    failure_response,
    json_response,
    read_json_object,
)
from farebox.sim.sse import data_event, drop_connection, open_stream, send_events
from farebox.sim.state import SIM_STATE, SimState
from farebox.sim.textgen import Completion
from farebox.sim.tokens import Tokenizer
from farebox.sim.tool_args import tool_arguments
from farebox.sim.web_search import PERPLEXITY_PREFIX, openai_annotations, perplexity_sources

PATHS = ("/v1/chat/completions", "/chat/completions")
ENDPOINT = "chat.completions"
PRIMING_TOKENS = 3
PER_MESSAGE_TOKENS = 3
SYSTEM_FINGERPRINT = "fp_farebox_sim"
DONE = b"data: [DONE]\n\n"


class BadRequest(ValueError):
    """A request OpenAI would refuse with a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The one function call a tool answer makes."""

    id: str
    name: str
    arguments: str
    name_tokens: int
    argument_pieces: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """What to reply, decided before any byte is sent."""

    id: str
    created: int
    model: str
    prompt_tokens: int
    completion_tokens: int  # reasoning included
    reasoning_tokens: int
    text: Completion | None
    tool: ToolCall | None
    finish_reason: str
    usage_allowed: bool
    annotations: tuple[dict[str, Any], ...] = ()  # url_citation, with web_search_options
    sources: dict[str, Any] | None = None  # Perplexity's top-level citations and search_results


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST [/sim/<faults>]/v1/chat/completions`."""
    state = request.app[SIM_STATE]
    prefix = request.match_info.get("spec", "")
    seen = state.stats.record(prefix, ENDPOINT)
    denied = check_auth(request, state.config)
    if denied is not None:
        return denied
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    state.receive(ENDPOINT, body, request.headers.get("X-Request-Id"))
    try:
        faults = parse_prefix(prefix).merged(parse_body(body.get("sim")))
        validate_chat(body)
    except FaultSpecError as exc:
        return error_response(400, str(exc), param="sim")
    except BadRequest as exc:
        return error_response(400, str(exc), param=exc.param)
    failure = await admit(state, faults, seen)
    if failure is not None:
        return failure_response(failure)
    answer = chat_answer(state, body, faults)
    timing = pace(state.config, faults)
    if body.get("stream") is True:
        timing = timing.after_hidden(answer.reasoning_tokens)
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await _stream(request, answer, faults, timing, wants_usage and answer.usage_allowed)
    delay = timing.body_delay_s(answer.completion_tokens)
    if delay:
        await asyncio.sleep(delay)
    return json_response(completion_json(answer), {"x-request-id": answer.id})


def validate_chat(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("You must provide a model parameter.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array of message objects.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role'.", f"messages[{i}]")
    for field in ("max_tokens", "max_completion_tokens"):
        value = body.get(field)
        if value is not None and (type(value) is not int or value < 1):
            raise BadRequest(f"'{field}' must be an integer >= 1.", field)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", "tools")


def chat_answer(state: SimState, body: dict[str, Any], faults: Faults) -> Answer:
    messages: list[dict[str, Any]] = body["messages"]
    tok = state.tokenizer
    number = state.next_id()
    prompt = _prompt_text(messages)
    text: Completion | None = None
    call: ToolCall | None = None
    asked: int | None = body.get("max_completion_tokens") or body.get("max_tokens")
    cap = None if faults.ignore_cap else asked
    thinking = faults.reasoning_tokens or 0
    reasoning = thinking if cap is None else min(thinking, cap)
    room = None if cap is None else cap - reasoning
    function = _chosen_function(body, faults)
    if function is not None:
        name = str(function["name"])
        arguments = orjson.dumps(tool_arguments(function.get("parameters"), prompt)).decode()
        call = ToolCall(
            f"call_sim{number:010x}", name, arguments, tok.count(name), tok.pieces(arguments)
        )
        used = call.name_tokens + sum(n for _, n in call.argument_pieces)
        finish = "tool_calls"
    else:
        natural = state.config.default_output_tokens
        if faults.output_tokens is not None:
            natural = faults.output_tokens
        limit = natural if room is None else min(room, natural)
        text = state.textgen.complete(prompt, limit)
        used = text.tokens
        finish = "length" if limit < natural else "stop"
    return Answer(
        id=f"chatcmpl-sim{number:010x}",
        created=int(time.time()),
        model=body["model"],
        prompt_tokens=_prompt_tokens(tok, messages),
        completion_tokens=reasoning + used,
        reasoning_tokens=reasoning,
        text=text,
        tool=call,
        finish_reason=finish,
        usage_allowed=faults.usage is not False,
        annotations=tuple(openai_annotations(prompt, faults.web_searches))
        if isinstance(body.get("web_search_options"), dict)
        and call is None
        and not body["model"].startswith(PERPLEXITY_PREFIX)
        else (),
        sources=perplexity_sources(prompt) if body["model"].startswith(PERPLEXITY_PREFIX) else None,
    )


def _content_parts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
    return []


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    """The text the answer repeats: the last user message with text, else the last with text."""
    fallback = ""
    for message in reversed(messages):
        text = " ".join(_content_parts(message.get("content")))
        if not text.strip():
            continue
        if message["role"] == "user":
            return text
        fallback = fallback or text
    return fallback


def _prompt_tokens(tok: Tokenizer, messages: list[dict[str, Any]]) -> int:
    total = PRIMING_TOKENS
    for message in messages:
        total += PER_MESSAGE_TOKENS
        for text in _content_parts(message.get("content")):
            total += tok.count(text)
        name = message.get("name")
        if isinstance(name, str):
            total += tok.count(name)
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for key in ("name", "arguments"):
                    if isinstance(value := function.get(key), str):
                        total += tok.count(value)
    return total


def _chosen_function(body: dict[str, Any], faults: Faults) -> dict[str, Any] | None:
    """The function to call, if the request asks for (or the faults force) a tool call."""
    tools = body.get("tools") or []
    functions: list[dict[str, Any]] = [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict)
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        if isinstance(wanted, str):
            return next((f for f in functions if f["name"] == wanted), {"name": wanted})
    if choice == "required" or faults.tool_call:
        return functions[0]
    return None


def usage_json(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens,
            "audio_tokens": 0,
        },
    }


def completion_json(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "refusal": None}
    if answer.tool is not None:
        call = answer.tool
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ]
    else:
        message["content"] = answer.text.text if answer.text is not None else ""
        if answer.annotations:
            message["annotations"] = list(answer.annotations)
    reply: dict[str, Any] = {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
    }
    if answer.sources is not None:
        reply.update(answer.sources)
    if answer.usage_allowed:
        reply["usage"] = usage_json(answer)
    return reply


def _chunk_head(answer: Answer) -> bytes:
    return (
        b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
        b'"system_fingerprint":"%s","choices":'
        % (
            answer.id.encode(),
            answer.created,
            orjson.dumps(answer.model),
            SYSTEM_FINGERPRINT.encode(),
        )
    )


def content_events(answer: Answer, with_usage: bool) -> tuple[list[bytes], list[int]]:
    """One SSE event per piece of output, and the tokens each carries."""
    head = _chunk_head(answer) + b'[{"index":0,"delta":'
    tail = b"}]" + (b',"usage":null' if with_usage else b"") + b"}\n\n"
    deltas: list[dict[str, Any]] = []
    tokens: list[int] = []
    if answer.tool is not None:
        call = answer.tool
        first = {
            "index": 0,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"role": "assistant", "content": None, "tool_calls": [first]})
        tokens.append(call.name_tokens)
        for piece, n in call.argument_pieces:
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            tokens.append(n)
    else:
        text = answer.text
        pieces = text.pieces if text is not None and text.pieces else ("",)
        counts = text.counts if text is not None and text.counts else (0,)
        deltas = [{"content": piece} for piece in pieces]
        deltas[0] = {"role": "assistant", "content": pieces[0]}
        tokens = list(counts)
        if answer.annotations:  # the citations come as a delta of their own, before the end
            deltas.insert(len(deltas) - 1, {"annotations": list(answer.annotations)})
            tokens.insert(len(tokens) - 1, 0)
    last = len(deltas) - 1
    finish = b'"' + answer.finish_reason.encode() + b'"'
    middle = b',"logprobs":null,"finish_reason":'
    events = [
        head + orjson.dumps(delta) + middle + (finish if i == last else b"null") + tail
        for i, delta in enumerate(deltas)
    ]
    if answer.sources is not None:  # Perplexity's sources, top-level on the last chunk
        events[-1] = (
            events[-1][: -len(b"}\n\n")] + b"," + orjson.dumps(answer.sources)[1:] + b"\n\n"
        )
    return events, tokens


def closing_events(answer: Answer, with_usage: bool) -> list[bytes]:
    """The events after the content: the usage chunk (when asked for), then [DONE]."""
    closing = [DONE]
    if with_usage:
        usage = orjson.dumps(usage_json(answer))
        closing.insert(0, _chunk_head(answer) + b'[],"usage":' + usage + b"}\n\n")
    return closing


async def _stream(
    request: web.Request, answer: Answer, faults: Faults, timing: Pace, with_usage: bool
) -> web.StreamResponse:
    events, tokens = content_events(answer, with_usage)
    response = await open_stream(request, {"x-request-id": answer.id})
    if faults.disconnect_after is not None:
        n = min(faults.disconnect_after, len(events))
        await send_events(response, events[:n], tokens[:n], timing)
        drop_connection(request)
        return response
    if faults.error_after is not None:
        n = min(faults.error_after, len(events))
        error = error_body(
            500, f"Simulated error after {n} chunks (sim error_after).", "sim_error_after"
        )
        await send_events(response, [*events[:n], data_event(error)], [*tokens[:n], 0], timing)
    else:
        closing = closing_events(answer, with_usage)
        await send_events(response, events + closing, tokens + [0] * len(closing), timing)
    await response.write_eof()
    return response


ROUTES: tuple[web.RouteDef, ...] = tuple(web.post(path, chat_completions) for path in PATHS)
