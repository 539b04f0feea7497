"""An Anthropic Messages request, checked and translated into an OpenAI chat body.

What translates: `system` (string or text blocks) and `role: "system"` messages (Claude Code sends
them mid-conversation; they become `<system-reminder>` text in the user turn, which every chat
template accepts); text, image, document and search_result blocks; `tool_use` / `tool_result`
(with `is_error`, and `tool_reference` blocks that load deferred tools); `thinking` and
`redacted_thinking` blocks (as `reasoning_details`, signatures intact); `tools`, `tool_choice`,
`stop_sequences`, `temperature`, `top_p`, `top_k`, `output_config.format` (as a JSON schema
`response_format`). Fields only Anthropic understands (`thinking` config, `metadata`,
`cache_control`, `context_management`, betas, ...) reach an Anthropic upstream through the original
request (see providers/native.py) and are left out of the OpenAI body. Fields Anthropic does not
define are passed through to the OpenAI body unchanged (as on /v1/chat/completions), so OpenAI-side
options such as `plugins` work on this front too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from farebox.anthropic.reasoning import redacted_detail, thinking_detail
from farebox.errors import InvalidRequest, quoted

ANTHROPIC_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_k",
        "top_p",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
        "cache_control",
        "diagnostics",
        "inference_geo",
        "speed",
    }
)
"""Top-level fields of Anthropic's request; any other field is passed through to the OpenAI body."""

_NOT_PASSED = frozenset({"n", "stream_options"})
"""OpenAI fields that would change the reply's shape: one choice, and farebox's own usage."""
_ROLES = ("user", "assistant", "system")
_USER_BLOCKS = ("text", "image", "document", "search_result", "tool_result", "tool_reference")
_ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking")
_SERVER_BLOCKS = ("server_tool_use", "mcp_tool_use", "mcp_tool_result", "container_upload")
"""Blocks of Anthropic-run tools: kept for an Anthropic upstream, left out of the OpenAI body."""
_BOUNDED_TOOL_TYPES = (
    "web_search_",  # billed per search, bounded by max_uses (search/native.py)
    "tool_search_tool_",  # picks among the request's own deferred tools
    "bash_",  # the rest run on the client: the next turn's input, held for then
    "text_editor_",
    "computer_",
    "memory_",
)
"""Anthropic-defined tool types farebox can hold for. The others (web_fetch, code_execution,
and MCP servers) would make Anthropic fetch or compute more input than was held, unbilled."""
_UNBOUNDED_FIELDS = ("mcp_servers", "container")
_THINKING_TYPES = ("enabled", "disabled", "adaptive")
_TOOL_CHOICES = ("auto", "any", "tool", "none")


@dataclass(slots=True)
class FrontRequest:
    """A checked Messages request: the OpenAI body to run, and what the reply needs."""

    model: str  # the model id as the customer asked for it (echoed back)
    stream: bool
    max_tokens: int  # as asked (the OpenAI body carries it clamped to the model's maximum)
    stop_sequences: tuple[str, ...]
    omit_thinking: bool  # thinking.display == "omitted": thinking text is not returned
    openai: dict[str, Any]


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _string(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{param}: Input should be a valid string", param)
    return value


def _object(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{param}: Input should be an object", param)
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name}: Input should be a number", name)
    if not low <= value <= high:
        raise _bad(f"{name}: Input should be between {low:g} and {high:g}", name)
    return value


def _whole(value: object, param: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{param}: Input should be a valid integer", param)
    if value < low:
        raise _bad(f"{param}: Input should be greater than or equal to {low}", param)
    return value


def _text_of(blocks: object, param: str) -> str:
    """`system`-like content: a string, or text blocks joined by blank lines."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _bad(f"{param}: Input should be a string or a list of text blocks", param)
    texts = []
    for i, block in enumerate(blocks):
        block = _object(block, f"{param}.{i}")
        if block.get("type") != "text":
            raise _bad(f"{param}.{i}: only text blocks are allowed here", f"{param}.{i}.type")
        texts.append(_string(block.get("text"), f"{param}.{i}.text"))
    return "\n\n".join(texts)


def _image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media = _string(source.get("media_type"), f"{param}.source.media_type")
        data = _string(source.get("data"), f"{param}.source.data")
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        url = _string(source.get("url"), f"{param}.source.url")
    else:
        raise _bad(
            f"{param}.source.type: image sources must be 'base64' or 'url' "
            "('file' ids are specific to Anthropic's Files API)",
            f"{param}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    source = _object(block.get("source"), f"{param}.source")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    kind = source.get("type")
    if kind == "text":
        text = _string(source.get("data"), f"{param}.source.data")
        head = f"<document title={orjson.dumps(title).decode()}>\n" if title else "<document>\n"
        return [{"type": "text", "text": head + text + "\n</document>"}]
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        return _user_parts(content, f"{param}.source.content", allowed=("text", "image"))
    if kind in ("base64", "url"):
        media = source.get("media_type", "application/pdf")
        if kind == "base64":
            data = _string(source.get("data"), f"{param}.source.data")
            file_data = f"data:{media};base64,{data}"
        else:
            file_data = _string(source.get("url"), f"{param}.source.url")
        return [
            {"type": "file", "file": {"filename": title or "document.pdf", "file_data": file_data}}
        ]
    raise _bad(
        f"{param}.source.type: document sources must be 'base64', 'url', 'text' or 'content'",
        f"{param}.source.type",
    )


def _search_result_text(block: dict[str, Any], param: str) -> str:
    title = _string(block.get("title"), f"{param}.title")
    source = _string(block.get("source"), f"{param}.source")
    body = _text_of(block.get("content"), f"{param}.content")
    return f"{title} ({source})\n{body}"


def _block_parts(block: object, where: str, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    """OpenAI content parts for one block of a kind in `allowed`."""
    block = _object(block, where)
    kind = block.get("type")
    if kind not in allowed:
        raise _bad(
            f"{where}.type: {quoted(kind)} is not allowed here (allowed: {', '.join(allowed)})",
            f"{where}.type",
        )
    if kind == "text":
        return [{"type": "text", "text": _string(block.get("text"), f"{where}.text")}]
    if kind == "image":
        return [_image_part(block, where)]
    if kind == "document":
        return _document_parts(block, where)
    return [{"type": "text", "text": _search_result_text(block, where)}]


def _user_parts(
    content: object, param: str, allowed: tuple[str, ...] = ("text", "image", "document")
) -> list[dict[str, Any]]:
    """OpenAI content parts for a string or a list of blocks of the kinds in `allowed`."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{param}: Input should be a string or a list of content blocks", param)
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        parts.extend(_block_parts(block, f"{param}.{i}", allowed))
    return parts


def _tool_result(
    block: dict[str, Any], where: str, loaded: set[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tool message for a tool_result block, and any images it returned (OpenAI tool
    messages carry text only, so those go to the user turn that follows)."""
    tool_use_id = _string(block.get("tool_use_id"), f"{where}.tool_use_id")
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, list):
        for j, inner in enumerate(content):
            inner_where = f"{where}.content.{j}"
            inner = _object(inner, inner_where)
            if inner.get("type") == "tool_reference":
                name = _string(inner.get("tool_name"), f"{inner_where}.tool_name")
                loaded.add(name)
                texts.append(f"Tool {name} is now available.")
                continue
            for part in _block_parts(
                inner, inner_where, ("text", "image", "document", "search_result")
            ):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    images.append(part)
    elif isinstance(content, str):
        texts.append(content)
    else:
        raise _bad(f"{where}.content: Input should be a string or a list of blocks", where)
    text = "\n".join(texts)
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise _bad(f"{where}.is_error: Input should be a valid boolean", f"{where}.is_error")
    if is_error:
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _user_messages(content: object, param: str, loaded: set[str]) -> list[dict[str, Any]]:
    """A user turn: tool messages first (OpenAI wants them right after the assistant's calls),
    then one user message with the other blocks."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise _bad(f"{param}: Input should be a string or a list of content blocks", param)
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        where = f"{param}.{i}"
        block = _object(block, where)
        kind = block.get("type")
        if kind == "tool_result":
            message, images = _tool_result(block, where, loaded)
            tools.append(message)
            parts.extend(images)
        elif kind == "tool_reference":
            loaded.add(_string(block.get("tool_name"), f"{where}.tool_name"))
        elif kind in _USER_BLOCKS:
            parts.extend(_block_parts(block, where, _USER_BLOCKS))
        else:
            raise _bad(
                f"{where}.type: {quoted(kind)} is not a user content block "
                f"(known: {', '.join(_USER_BLOCKS)})",
                f"{where}.type",
            )
    messages = tools
    if parts:
        messages.append({"role": "user", "content": parts})
    return messages


def _assistant_message(content: object, param: str) -> dict[str, Any] | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise _bad(f"{param}: Input should be a string or a list of content blocks", param)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    thoughts: list[str] = []
    for i, block in enumerate(content):
        where = f"{param}.{i}"
        block = _object(block, where)
        kind = block.get("type")
        if kind == "text":
            texts.append(_string(block.get("text"), f"{where}.text"))
        elif kind == "tool_use":
            tool_input = block.get("input", {})
            if not isinstance(tool_input, dict):
                raise _bad(f"{where}.input: Input should be an object", f"{where}.input")
            calls.append(
                {
                    "id": _string(block.get("id"), f"{where}.id"),
                    "type": "function",
                    "function": {
                        "name": _string(block.get("name"), f"{where}.name"),
                        "arguments": orjson.dumps(tool_input).decode(),
                    },
                }
            )
        elif kind == "thinking":
            text = _string(block.get("thinking"), f"{where}.thinking")
            signature = block.get("signature")
            if signature is not None and not isinstance(signature, str):
                raise _bad(f"{where}.signature: Input should be a valid string", where)
            thoughts.append(text)
            details.append(thinking_detail(text, signature, len(details)))
        elif kind == "redacted_thinking":
            data = _string(block.get("data"), f"{where}.data")
            details.append(redacted_detail(data, len(details)))
        elif kind in _SERVER_BLOCKS or (isinstance(kind, str) and kind.endswith("_tool_result")):
            continue
        else:
            raise _bad(
                f"{where}.type: {quoted(kind)} is not an assistant content block "
                f"(known: {', '.join(_ASSISTANT_BLOCKS)})",
                f"{where}.type",
            )
    if not (texts or calls or details):
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    if details:
        message["reasoning_details"] = details
        if any(thoughts):
            message["reasoning_content"] = "".join(thoughts)
    return message


def _system_reminder(content: object, param: str) -> dict[str, Any]:
    text = _text_of(content, param)
    return {"type": "text", "text": f"<system-reminder>\n{text}\n</system-reminder>"}


def _as_parts(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content) if isinstance(content, list) else []


def _merge_users(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive user messages as one (Anthropic merges them too; strict templates need it),
    with content kept a plain string when it is text only."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "user" and merged and merged[-1]["role"] == "user":
            merged[-1] = {
                "role": "user",
                "content": _as_parts(merged[-1]["content"]) + _as_parts(message["content"]),
            }
        else:
            merged.append(message)
    for message in merged:
        content = message.get("content")
        if (
            message["role"] == "user"
            and isinstance(content, list)
            and len(content) == 1
            and content[0].get("type") == "text"
        ):
            message["content"] = content[0]["text"]
    return merged


def _messages(body: dict[str, Any], loaded: set[str]) -> list[dict[str, Any]]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad("messages: at least one message is required", "messages")
    system_parts: list[str] = []
    if body.get("system") is not None:
        text = _text_of(body["system"], "system")
        if text:
            system_parts.append(text)
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        where = f"messages.{i}"
        message = _object(message, where)
        role = message.get("role")
        if role not in _ROLES:
            raise _bad(
                f"{where}.role: Input should be 'user', 'assistant' or 'system'", f"{where}.role"
            )
        if "content" not in message:
            raise _bad(f"{where}.content: Field required", f"{where}.content")
        content = message["content"]
        if role == "system":
            if not out:  # before any turn: part of the system prompt
                system_parts.append(_text_of(content, f"{where}.content"))
            else:
                out.append({"role": "user", "content": [_system_reminder(content, where)]})
        elif role == "user":
            out.extend(_user_messages(content, f"{where}.content", loaded))
        else:
            assistant = _assistant_message(content, f"{where}.content")
            if assistant is not None:
                out.append(assistant)
    if not out:
        raise _bad("messages: at least one user or assistant message is required", "messages")
    system = [{"role": "system", "content": "\n\n".join(system_parts)}] if system_parts else []
    return system + _merge_users(out)


def _tools(body: dict[str, Any], loaded: set[str]) -> list[dict[str, Any]] | None:
    raw = body.get("tools")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _bad("tools: Input should be a valid list", "tools")
    tools = []
    for i, tool in enumerate(raw):
        where = f"tools.{i}"
        tool = _object(tool, where)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            if not isinstance(kind, str) or not kind.startswith(_BOUNDED_TOOL_TYPES):
                shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
                raise _bad(
                    f"{where}.type: {shown!r} is not supported here: Anthropic would add input "
                    "this gateway cannot hold for (custom tools, web_search and client-run "
                    "tools are)",
                    f"{where}.type",
                )
            continue  # an Anthropic-defined tool: native upstreams only
        name = _string(tool.get("name"), f"{where}.name")
        schema = _object(tool.get("input_schema"), f"{where}.input_schema")
        if tool.get("defer_loading") is True and name not in loaded:
            continue  # not in the model's context until a tool_reference loads it
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if tool.get("strict") is True:
            function["strict"] = True
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(body: dict[str, Any], out: dict[str, Any]) -> None:
    raw = body.get("tool_choice")
    if raw is None:
        return
    choice = _object(raw, "tool_choice")
    kind = choice.get("type")
    if kind not in _TOOL_CHOICES:
        raise _bad(
            f"tool_choice.type: Input should be one of {', '.join(_TOOL_CHOICES)}",
            "tool_choice.type",
        )
    value: object = {"auto": "auto", "any": "required", "none": "none"}.get(kind)
    if kind == "tool":
        name = _string(choice.get("name"), "tool_choice.name")
        value = {"type": "function", "function": {"name": name}}
    if not out.get("tools"):
        return  # OpenAI refuses a tool_choice without tools
    out["tool_choice"] = value
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    raw = body.get("stop_sequences")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise _bad("stop_sequences: Input should be a list of non-empty strings", "stop_sequences")
    return tuple(raw)


def _omit_thinking(body: dict[str, Any]) -> bool:
    raw = body.get("thinking")
    if raw is None:
        return False
    thinking = _object(raw, "thinking")
    kind = thinking.get("type")
    if kind not in _THINKING_TYPES:
        raise _bad(
            f"thinking.type: Input should be one of {', '.join(_THINKING_TYPES)}", "thinking.type"
        )
    if kind == "enabled":
        _whole(thinking.get("budget_tokens"), "thinking.budget_tokens", 1)
    return thinking.get("display") == "omitted"


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if fmt is None:
        return None
    fmt = _object(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise _bad("output_config.format.type: Input should be 'json_schema'", "output_config")
    schema = _object(fmt.get("schema"), "output_config.format.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def translate(body: dict[str, Any], max_output: int) -> FrontRequest:
    """Check a Messages request and build the OpenAI chat body for a model that can write
    `max_output` tokens at most (a larger `max_tokens` is lowered to it, not refused, so a client
    asking a Claude-sized budget still works on a smaller model)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model: Field required (a model id from GET /v1/models)", "model")
    if "max_tokens" not in body:
        raise _bad("max_tokens: Field required", "max_tokens")
    max_tokens = _whole(body["max_tokens"], "max_tokens", 1)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream: Input should be a valid boolean", "stream")
    if body.get("metadata") is not None:
        _object(body["metadata"], "metadata")
    for name in _UNBOUNDED_FIELDS:
        if body.get(name):
            raise _bad(
                f"{name}: not supported here: Anthropic would add input this gateway cannot "
                "hold for",
                name,
            )
    omit = _omit_thinking(body)
    stops = _stop_sequences(body)
    loaded: set[str] = set()
    messages = _messages(body, loaded)
    out: dict[str, Any] = {
        k: v for k, v in body.items() if k not in ANTHROPIC_FIELDS and k not in _NOT_PASSED
    }
    out.update(model=model, messages=messages, max_tokens=min(max_tokens, max_output))
    out["stream"] = stream
    for name, high in (("temperature", 2.0), ("top_p", 1.0)):
        value = _number(body, name, 0.0, high)
        if value is not None:
            out[name] = value
    if body.get("top_k") is not None:
        out["top_k"] = _whole(body["top_k"], "top_k", 0)
    if stops:
        out["stop"] = list(stops)
    tools = _tools(body, loaded)
    if tools:
        out["tools"] = tools
    _tool_choice(body, out)
    response_format = _response_format(body)
    if response_format is not None:
        out["response_format"] = response_format
    return FrontRequest(
        model=model,
        stream=stream,
        max_tokens=max_tokens,
        stop_sequences=stops,
        omit_thinking=omit,
        openai=out,
    )
