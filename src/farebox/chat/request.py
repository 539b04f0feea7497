"""Reading an OpenAI chat request: validate what billing depends on, pass everything else through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from farebox.billing.tokens import count_json, count_messages, encoder
from farebox.catalog.model import Catalog, CatalogModel, model_kind
from farebox.chat.addons import RequestAddon
from farebox.chat.fields import read_fields
from farebox.errors import InvalidRequest
from farebox.inputs import parse_json_object
from farebox.providers.native import NativeRequests
from farebox.search.options import WebOptions, take_web_options


@dataclass(slots=True)
class ChatCall:
    model: CatalogModel
    body: dict[str, Any]
    stream: bool
    include_usage: bool
    max_tokens: int | None  # per choice, as the customer asked (None = not set)
    max_tokens_field: str  # "max_tokens" or "max_completion_tokens"
    n: int
    prompt_tokens: int  # our count, from the model's tokenizer
    native: NativeRequests | None = None  # the request in an upstream's own format, if any
    web: WebOptions | None = None  # the web plugin, when asked for
    addon: RequestAddon | None = None  # paid work besides tokens (see chat/addons.py)
    native_search: int | None = None
    """The customer asked the provider's own search directly (`web_search_options`, or
    Anthropic's `web_search` tool): at most this many searches (0: not said). None: not asked."""

    @property
    def extra_cost(self) -> int:
        """What the addon's work cost, added to the tokens' cost at settlement."""
        return self.addon.actual_nanos if self.addon is not None else 0


def _within(value: int | None, name: str, upper: int) -> int | None:
    if value is not None and value > upper:
        raise InvalidRequest(f"{name} must be at most {upper} for this model", param=name)
    return value


def parse_chat(raw: bytes, catalog: Catalog) -> ChatCall:
    return chat_call(parse_json_object(raw), catalog)


def chat_call(body: dict[str, Any], catalog: Catalog) -> ChatCall:
    """Validate an OpenAI chat body (already parsed) into a ChatCall."""
    web = take_web_options(body)
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidRequest("model is required: a model id from GET /v1/models", param="model")
    model = catalog.resolve(model_id)
    if model.type != "chat":
        raise InvalidRequest(
            f"{model.id} is {model_kind(model.type)}, not a chat model", param="model"
        )
    if model.private:
        raise InvalidRequest(
            f"{model.id} runs in an enclave and takes only end-to-end encrypted requests: run "
            "`farebox private-proxy` beside your app and send it there (see the README).",
            param="model",
        )
    fields = read_fields(body)
    messages = body["messages"]  # the customer's own list, sent on unchanged
    stream = bool(fields.stream)
    options = body.get("stream_options")
    include_usage = bool(options and options.get("include_usage"))
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    max_tokens = _within(getattr(fields, field), field, model.max_output)
    n = fields.n or 1
    enc = encoder(model.tokenizer)
    prompt_tokens = count_messages(enc, messages)
    for extra in ("tools", "functions", "response_format"):
        if body.get(extra) is not None:
            prompt_tokens += count_json(enc, orjson.dumps(body[extra]))
    if prompt_tokens > model.context:
        raise InvalidRequest(
            f"The prompt is about {prompt_tokens} tokens, more than {model.id}'s context of "
            f"{model.context} tokens. Shorten the messages.",
            param="messages",
        )
    body["model"] = model.id
    search_options = body.get("web_search_options")
    if search_options is not None and not isinstance(search_options, dict):
        raise InvalidRequest("web_search_options must be an object", param="web_search_options")
    return ChatCall(
        model=model,
        body=body,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        max_tokens_field=field,
        n=n,
        prompt_tokens=prompt_tokens,
        web=web,
        native_search=0 if search_options is not None else None,
    )
