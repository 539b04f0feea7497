"""The request an Anthropic upstream is sent: the customer's own Messages request when the call
came in on /v1/messages (losslessly, with the money-capped `max_tokens`), else the OpenAI chat body
translated into a Messages request.
"""

from __future__ import annotations

from typing import Any

import orjson

from farebox.anthropic.front_response import tool_input
from farebox.errors import InvalidRequest
from farebox.thinking import MIN_THINKING_BUDGET, fit_thinking

_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}
"""OpenAI `reasoning_effort` -> a thinking budget (then kept below max_tokens)."""


def _max_tokens(openai: dict[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = openai.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


WEB_SEARCH_TOOL = "web_search_20250305"
"""Anthropic's web search server tool (billed per search, usage.server_tool_use)."""


def is_web_search_tool(tool: object) -> bool:
    return isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_")


def _web_search(openai: dict[str, Any], body: dict[str, Any]) -> None:
    """`web_search_options` (set by the web plugin, see search/native.py) as the `web_search`
    tool: `max_uses` bounds the searches to what was held for, whatever the request said."""
    options = openai.get("web_search_options")
    if not isinstance(options, dict):
        return
    tools = list(body.get("tools") or [])
    tool = next((t for t in tools if is_web_search_tool(t)), None)
    if tool is None:
        tool = {"type": WEB_SEARCH_TOOL, "name": "web_search"}
        tools.append(tool)
    else:
        tools[tools.index(tool)] = tool = dict(tool)
    limit = options.get("max_uses")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        asked = tool.get("max_uses")
        keep = isinstance(asked, int) and not isinstance(asked, bool) and 0 < asked < limit
        tool["max_uses"] = asked if keep else limit
    if "allowed_domains" not in tool and "blocked_domains" not in tool:
        for key in ("allowed_domains", "blocked_domains"):
            if isinstance(options.get(key), list) and options[key]:
                tool[key] = options[key]
                break
    location = options.get("user_location")
    approximate = location.get("approximate") if isinstance(location, dict) else None
    if isinstance(approximate, dict) and "user_location" not in tool:
        place = {k: v for k, v in approximate.items() if k in _PLACE and isinstance(v, str)}
        if place:
            tool["user_location"] = {"type": "approximate", **place}
    body["tools"] = tools


_PLACE = ("city", "region", "country", "timezone")


def from_native(
    native: dict[str, Any], openai: dict[str, Any], upstream_model: str, stream: bool
) -> dict[str, Any]:
    body = dict(native)
    body["model"] = upstream_model
    body["stream"] = stream
    body["max_tokens"] = _max_tokens(openai, int(native.get("max_tokens") or 1))
    fit_thinking(body, body["max_tokens"])
    _web_search(openai, body)
    return body


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media = head[5:].split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_block(file: dict[str, Any]) -> dict[str, Any]:
    data = file.get("file_data")
    if not isinstance(data, str):
        raise InvalidRequest(
            "file parts need file_data (a data: URL or an https URL) for this model",
            param="messages",
        )
    block: dict[str, Any]
    if data.startswith("data:"):
        head, _, payload = data.partition(",")
        media = head[5:].split(";")[0] or "application/pdf"
        block = {
            "type": "document",
            "source": {"type": "base64", "media_type": media, "data": payload},
        }
    else:
        block = {"type": "document", "source": {"type": "url", "url": data}}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _blocks(content: object) -> list[dict[str, Any]]:
    """OpenAI content (string or parts) as Anthropic blocks (cache_control kept)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        block: dict[str, Any] | None = None
        if kind in ("text", "input_text") and isinstance(part.get("text"), str):
            block = {"type": "text", "text": part["text"]}
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                block = _image_block(url)
        elif kind == "file" and isinstance(part.get("file"), dict):
            block = _file_block(part["file"])
        if block is None:
            raise InvalidRequest(
                f"Content part type {kind!r} cannot be sent to this model", param="messages"
            )
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _thinking_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    details = message.get("reasoning_details")
    for item in details if isinstance(details, list) else ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "reasoning.encrypted" and isinstance(item.get("data"), str):
            blocks.append({"type": "redacted_thinking", "data": item["data"]})
        elif item.get("type") == "reasoning.text" and isinstance(item.get("signature"), str):
            text = item.get("text")
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": text if isinstance(text, str) else "",
                    "signature": item["signature"],
                }
            )
    return blocks  # unsigned reasoning cannot be sent back to Anthropic: it is left out


def _assistant(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _thinking_blocks(message) + _blocks(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or "",
                    "name": function.get("name") or "",
                    "input": tool_input(function.get("arguments")),
                }
            )
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", "")}
    if isinstance(content, str):
        block["content"] = content
    else:
        block["content"] = [b for b in _blocks(content) if b["type"] in ("text", "image")]
    return block


def _conversation(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, turns): system/developer messages lifted out, tool messages as user
    tool_result blocks, consecutive same-role turns merged."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content")))
            continue
        if role in ("tool", "function"):
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _assistant(message)
        else:
            role, blocks = "user", _blocks(message.get("content"))
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # tool results first in a user turn, as Anthropic wants
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return system, turns


def _tools(openai: dict[str, Any], body: dict[str, Any]) -> None:
    tools = []
    for tool in openai.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        entry: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if isinstance(function.get("description"), str):
            entry["description"] = function["description"]
        tools.append(entry)
    if not tools:
        return
    body["tools"] = tools
    choice = openai.get("tool_choice")
    mapped: dict[str, Any] | None = None
    if choice == "auto":
        mapped = {"type": "auto"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        mapped = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    if openai.get("parallel_tool_calls") is False:
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    if mapped is not None:
        body["tool_choice"] = mapped


def _thinking(openai: dict[str, Any], body: dict[str, Any]) -> None:
    if isinstance(openai.get("thinking"), dict):  # Anthropic's own field, as LiteLLM accepts it
        body["thinking"] = openai["thinking"]
    else:
        reasoning = openai.get("reasoning")
        effort = openai.get("reasoning_effort")
        budget = None
        if isinstance(reasoning, dict):
            if isinstance(reasoning.get("max_tokens"), int):
                budget = reasoning["max_tokens"]
            effort = reasoning.get("effort", effort)
        if budget is None and isinstance(effort, str):
            budget = _EFFORT_BUDGET.get(effort)
        if budget is None:
            return
        body["thinking"] = {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET)}
    fit_thinking(body, body["max_tokens"])
    if body["thinking"].get("type") != "disabled":
        body.pop("temperature", None)  # Anthropic refuses a temperature with thinking
        body.pop("top_k", None)


def from_openai(
    openai: dict[str, Any], upstream_model: str, stream: bool, max_output: int
) -> dict[str, Any]:
    system, turns = _conversation(openai.get("messages") or [])
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": _max_tokens(openai, max_output),
        "messages": turns,
        "stream": stream,
    }
    if system:
        body["system"] = system
    temperature = openai.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        body["temperature"] = min(float(temperature), 1.0)  # Anthropic's range is 0..1
    for name in ("top_p", "top_k"):
        if openai.get(name) is not None:
            body[name] = openai[name]
    stop = openai.get("stop")
    if isinstance(stop, str):
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        body["stop_sequences"] = stop
    if isinstance(openai.get("user"), str):
        body["metadata"] = {"user_id": openai["user"]}
    _tools(openai, body)
    _web_search(openai, body)
    _thinking(openai, body)
    response_format = openai.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        if isinstance(schema, dict) and isinstance(schema.get("schema"), dict):
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema["schema"]}}
    if "sim" in openai:  # the simulator's per-request faults, for tests
        body["sim"] = openai["sim"]
    return body


def encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
