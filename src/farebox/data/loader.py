"""Load the data-enrichment catalog: the shipped file, merged with the operator's
(`FAREBOX_DATA_CATALOG`), checked field by field, priced.

The file has `upstreams` (base URL, auth header and key variable, timeouts) and `endpoints`
(path, method, parameters, the upstream call, and the price: `price_usd`, or `cost_usd` plus a
margin). The operator's file merges over the shipped one as the model catalog's does: an entry
that exists is merged field by field (null removes a field), a new one is added, `remove` drops
shipped endpoints, `replace_defaults: true` drops them all. Upstream keys come from the
environment, never from the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from farebox.catalog import parse
from farebox.catalog.merge import merge_entries
from farebox.catalog.parse import JsonObject, Where
from farebox.money import decimal_usd_to_nanos

from .model import (
    ITEM_TYPES,
    LOCATIONS,
    METHODS,
    PARAM_TYPES,
    UPSTREAM_METHODS,
    Auth,
    DataCatalog,
    Endpoint,
    OAuthClient,
    Param,
    Upstream,
    UpstreamCall,
)

DEFAULT_DATA_CATALOG_PATH = Path(__file__).with_name("default_endpoints.json")
DATA_CATALOG_ENV = "FAREBOX_DATA_CATALOG"

_TOP_KEYS = ("version", "defaults", "upstreams", "endpoints")
_OVERRIDE_KEYS = ("remove", "replace_defaults")
_DEFAULT_KEYS = ("margin", "timeout_s")
_UPSTREAM_KEYS = ("base_url", "auth", "headers", "connect_timeout_s", "timeout_s", "docs")
_AUTH_KEYS = ("header", "scheme", "env", "oauth2_client_credentials")
_OAUTH_KEYS = ("token_url", "client_id_env", "client_secret_env")
_ENDPOINT_KEYS = (
    "provider",
    "path",
    "method",
    "description",
    "parameters",
    "one_of",
    "upstream",
    "price_usd",
    "cost_usd",
    "cost_source",
    "margin",
)
_CALL_KEYS = ("name", "method", "path", "headers", "query", "body")
_PARAM_KEYS = (
    "name",
    "type",
    "required",
    "description",
    "enum",
    "minimum",
    "maximum",
    "max_length",
    "pattern",
    "capture",
    "items",
    "min_items",
    "max_items",
    "max_bytes",
    "default",
    "to",
    "in",
)
_PATH = re.compile(r"^(/[A-Za-z0-9][A-Za-z0-9._-]*)+$")
_SLOT = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
_HEADER = re.compile(r"^[A-Za-z0-9-]+$")
_RESERVED_PATHS = frozenset({"/endpoints"})
_MAX_STRING = 100_000


def load_data_catalog(
    override_path: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    base: Path | None = None,
) -> DataCatalog:
    """The shipped catalog (or `base`), merged with `override_path` or else
    $FAREBOX_DATA_CATALOG; keys read from `env`."""
    base_path = base or DEFAULT_DATA_CATALOG_PATH
    merged = _Merged().apply(
        parse.read_json_file(base_path, "data catalog"), str(base_path), override=False
    )
    if override_path is None and env.get(DATA_CATALOG_ENV):
        override_path = Path(env[DATA_CATALOG_ENV])
    if override_path is not None:
        merged = merged.apply(
            parse.read_json_file(override_path, "data catalog"), str(override_path), override=True
        )
    return _build(merged, env)


def data_catalog_from_dict(
    data: Mapping[str, Any], env: Mapping[str, str], *, source: str = "<data catalog>"
) -> DataCatalog:
    """A complete catalog from a dict in the file format (tests, demo mode); no merging."""
    return _build(_Merged().apply(data, source, override=False), env)


class _Merged:
    """The file layers merged: defaults, upstreams and endpoints, each with its source."""

    def __init__(self) -> None:
        self.defaults: dict[str, tuple[Any, str]] = {}
        self.upstreams: dict[str, tuple[dict[str, Any], str]] = {}
        self.endpoints: dict[str, tuple[dict[str, Any], str]] = {}

    def apply(self, data: object, source: str, *, override: bool) -> _Merged:
        where = Where(source)
        top_keys = _TOP_KEYS + (_OVERRIDE_KEYS if override else ())
        top, defaults, replace = parse.file_header(data, where, top_keys, _DEFAULT_KEYS)
        out = _Merged()
        out.defaults = dict(self.defaults)
        for key, value in defaults.items():
            if value is None:
                out.defaults.pop(key, None)
            else:
                out.defaults[key] = (value, source)
        endpoints = {} if replace else dict(self.endpoints)
        for endpoint_id in parse.name_list(top.get("remove", []), where, "remove"):
            if endpoints.pop(endpoint_id, None) is None:
                raise where.error(f"there is no endpoint {endpoint_id!r} to remove", "remove")
        out.upstreams = merge_entries(self.upstreams, _section(top, "upstreams", where), source)
        out.endpoints = merge_entries(endpoints, _section(top, "endpoints", where), source)
        return out


def _section(top: JsonObject, name: str, where: Where) -> dict[str, JsonObject]:
    entries = parse.as_object(top.get(name, {}), where, name)
    return {
        parse.name(key, where, f"{name}.{key}"): parse.as_object(value, where, f"{name}.{key}")
        for key, value in entries.items()
    }


def _build(merged: _Merged, env: Mapping[str, str]) -> DataCatalog:
    margin = Decimal(0)
    timeout_s = 30.0
    if "margin" in merged.defaults:
        value, source = merged.defaults["margin"]
        margin = parse.margin(value, Where(source), "defaults.margin")
    if "timeout_s" in merged.defaults:
        value, source = merged.defaults["timeout_s"]
        timeout_s = parse.seconds(value, Where(source), "defaults.timeout_s")
    upstreams = {
        name: _upstream(name, obj, env, timeout_s, Where(source).of(f"upstream {name!r}"))
        for name, (obj, source) in merged.upstreams.items()
    }
    endpoints: dict[str, Endpoint] = {}
    seen: dict[tuple[str, str], str] = {}
    for endpoint_id, (obj, source) in merged.endpoints.items():
        where = Where(source).of(f"endpoint {endpoint_id!r}")
        endpoint = _endpoint(endpoint_id, obj, upstreams, margin, where)
        other = seen.get((endpoint.method, endpoint.path))
        if other is not None:
            raise where.error(f"{endpoint.method} {endpoint.path} is also endpoint {other!r}")
        seen[(endpoint.method, endpoint.path)] = endpoint_id
        endpoints[endpoint_id] = endpoint
    return DataCatalog(endpoints=MappingProxyType(endpoints), upstreams=MappingProxyType(upstreams))


def _text(obj: JsonObject, key: str, where: Where, default: str = "") -> str:
    if key not in obj:
        return default
    value = parse.string(obj[key], where, key)
    if len(value) > _MAX_STRING:
        raise where.error(f"is longer than {_MAX_STRING} characters", key)
    return value


def _url(value: object, where: Where, field: str) -> str:
    url = parse.string(value, where, field).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise where.error(f"must be an http:// or https:// URL, got {url!r}", field)
    return url


def _headers(value: object, where: Where, field: str) -> dict[str, str]:
    obj = parse.as_object(value, where, field)
    headers = {}
    for name, text in obj.items():
        if not _HEADER.match(name):
            raise where.error(f"{name!r} is not a header name", f"{field}.{name}")
        headers[name] = parse.string(text, where, f"{field}.{name}")
    return headers


def _env_value(env: Mapping[str, str], name: str | None) -> str | None:
    return (env.get(name) or None) if name else None


def _auth(value: object, env: Mapping[str, str], where: Where) -> Auth:
    obj = parse.as_object(value, where, "auth")
    parse.check_keys(obj, _AUTH_KEYS, where, prefix="auth.")
    if "oauth2_client_credentials" in obj:
        oauth = parse.as_object(obj["oauth2_client_credentials"], where, "auth.oauth2")
        parse.check_keys(oauth, _OAUTH_KEYS, where, prefix="auth.oauth2_client_credentials.")
        id_env = parse.string(oauth.get("client_id_env"), where, "auth.client_id_env")
        secret_env = parse.string(oauth.get("client_secret_env"), where, "auth.client_secret_env")
        client = OAuthClient(
            token_url=_url(oauth.get("token_url"), where, "auth.token_url"),
            client_id_env=id_env,
            client_secret_env=secret_env,
            client_id=_env_value(env, id_env),
            client_secret=_env_value(env, secret_env),
        )
        return Auth(oauth=client)
    header = _text(obj, "header", where) or None
    if header is not None and not _HEADER.match(header):
        raise where.error(f"{header!r} is not a header name", "auth.header")
    key_env = _text(obj, "env", where) or None
    if header is not None and key_env is None:
        raise where.error("needs the environment variable that holds the key", "auth.env")
    return Auth(
        header=header,
        scheme=_text(obj, "scheme", where),
        env=key_env,
        key=_env_value(env, key_env),
    )


def _upstream(
    name: str, obj: JsonObject, env: Mapping[str, str], timeout_s: float, where: Where
) -> Upstream:
    parse.check_keys(obj, _UPSTREAM_KEYS, where)
    return Upstream(
        name=name,
        base_url=_url(obj.get("base_url"), where, "base_url"),
        auth=_auth(obj.get("auth", {}), env, where),
        headers=MappingProxyType(_headers(obj.get("headers", {}), where, "headers")),
        connect_timeout_s=parse.seconds(obj.get("connect_timeout_s", 5.0), where, "connect"),
        timeout_s=parse.seconds(obj.get("timeout_s", timeout_s), where, "timeout_s"),
        docs=_text(obj, "docs", where),
    )


def _price(obj: JsonObject, margin: Decimal, where: Where) -> tuple[int, int | None]:
    """(sale price, provider cost or None), in nanodollars."""
    cost = parse.usd_nanos(obj["cost_usd"], where, "cost_usd") if "cost_usd" in obj else None
    if "price_usd" in obj:
        return parse.usd_nanos(obj["price_usd"], where, "price_usd"), cost
    if cost is None:
        raise where.error("has no price: set price_usd, or cost_usd (plus a margin)")
    if "margin" in obj:
        margin = parse.margin(obj["margin"], where, "margin")
    cost_usd = Decimal(cost) / Decimal(1_000_000_000)
    return decimal_usd_to_nanos(cost_usd * (1 + margin)), cost


def _endpoint(
    endpoint_id: str,
    obj: JsonObject,
    upstreams: Mapping[str, Upstream],
    margin: Decimal,
    where: Where,
) -> Endpoint:
    parse.check_keys(obj, _ENDPOINT_KEYS, where)
    path = parse.string(obj.get("path"), where, "path")
    if not _PATH.match(path) or len(path) > 200 or path in _RESERVED_PATHS:
        raise where.error(f"{path!r} is not a usable path under /v1/data (like /api/x/y)", "path")
    method = parse.string(obj.get("method", "POST"), where, "method").upper()
    if method not in METHODS:
        raise where.error(f"must be one of {', '.join(METHODS)}", "method")
    call = _call(obj.get("upstream"), upstreams, where)
    raw_params = obj.get("parameters", [])
    if not isinstance(raw_params, list):
        raise where.error("must be a list of parameters", "parameters")
    params = tuple(_param(p, i, method, call, where) for i, p in enumerate(raw_params))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise where.error("has a parameter twice", "parameters")
    for slot in _SLOT.findall(call.path):
        if not any(p.location == "path" and p.to == slot for p in params):
            raise where.error(f"no parameter fills {{{slot}}} in the upstream path", "upstream")
    price, cost = _price(obj, margin, where)
    return Endpoint(
        id=endpoint_id,
        provider=parse.string(obj.get("provider"), where, "provider"),
        path=path,
        method=method,
        description=_text(obj, "description", where),
        params=params,
        call=call,
        price=price,
        cost=cost,
        cost_source=_text(obj, "cost_source", where),
        one_of=_one_of(obj.get("one_of", []), set(names), where),
    )


def _one_of(value: object, names: set[str], where: Where) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise where.error("must be a list of lists of parameter names", "one_of")
    groups = []
    for i, group in enumerate(value):
        members = parse.name_list(group, where, f"one_of[{i}]")
        unknown = [m for m in members if m not in names]
        if unknown or not members:
            raise where.error(f"names unknown parameters {unknown}", f"one_of[{i}]")
        groups.append(members)
    return tuple(groups)


def _call(value: object, upstreams: Mapping[str, Upstream], where: Where) -> UpstreamCall:
    obj = parse.as_object(value, where, "upstream")
    parse.check_keys(obj, _CALL_KEYS, where, prefix="upstream.")
    name = parse.string(obj.get("name"), where, "upstream.name")
    if name not in upstreams:
        raise where.error(f"no upstream named {name!r} (known: {sorted(upstreams)})", "upstream")
    method = parse.string(obj.get("method", "POST"), where, "upstream.method").upper()
    if method not in UPSTREAM_METHODS:
        raise where.error(f"must be one of {', '.join(UPSTREAM_METHODS)}", "upstream.method")
    path = parse.string(obj.get("path"), where, "upstream.path")
    if not path.startswith("/") or any(c in path for c in "?#") or ".." in path:
        raise where.error(f"{path!r} must start with / and hold no ?, # or ..", "upstream.path")
    query = parse.as_object(obj.get("query", {}), where, "upstream.query")
    body = parse.as_object(obj.get("body", {}), where, "upstream.body")
    if body and method == "GET":
        raise where.error("a GET call cannot carry body fields", "upstream.body")
    return UpstreamCall(
        upstream=name,
        method=method,
        path=path,
        headers=MappingProxyType(_headers(obj.get("headers", {}), where, "upstream.headers")),
        query=MappingProxyType({k: _query_value(v, where, k) for k, v in query.items()}),
        body=MappingProxyType(dict(body)),
    )


def _query_value(value: object, where: Where, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str) and str(value):
        return str(value)
    raise where.error("must be a string, a whole number or a boolean", f"upstream.query.{key}")


def _number(obj: JsonObject, key: str, where: Where, field: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error("must be a number", f"{field}.{key}")
    return float(value)


def _param(value: object, index: int, method: str, call: UpstreamCall, where: Where) -> Param:
    field = f"parameters[{index}]"
    obj = parse.as_object(value, where, field)
    parse.check_keys(obj, _PARAM_KEYS, where, prefix=f"{field}.")
    name = parse.string(obj.get("name"), where, f"{field}.name")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,63}", name):
        raise where.error(f"{name!r} is not a parameter name", f"{field}.name")
    field = f"parameter {name!r}"
    kind = parse.string(obj.get("type"), where, f"{field}.type")
    if kind not in PARAM_TYPES:
        raise where.error(f"unknown type {kind!r} (known: {', '.join(PARAM_TYPES)})", field)
    items = parse.string(obj.get("items", "string"), where, f"{field}.items")
    if items not in ITEM_TYPES:
        raise where.error(f"unknown item type {items!r} (known: {', '.join(ITEM_TYPES)})", field)
    to = parse.string(obj.get("to", name), where, f"{field}.to")
    location = obj.get("in")
    if location is None:
        location = (
            "path" if f"{{{to}}}" in call.path else "body" if call.method == "POST" else "query"
        )
    if location not in LOCATIONS:
        raise where.error(f"must be one of {', '.join(LOCATIONS)}", f"{field}.in")
    if location == "body" and call.method == "GET":
        raise where.error("a GET upstream call has no body to put it in", f"{field}.in")
    required = obj.get("required", False)
    if not isinstance(required, bool):
        raise where.error("must be true or false", f"{field}.required")
    if location == "path" and not required and obj.get("default") is None:
        raise where.error("a path parameter must be required or have a default", field)
    if method == "GET" and kind == "object":
        raise where.error("a GET endpoint cannot take an object parameter", field)
    pattern = None
    if "pattern" in obj:
        try:
            pattern = re.compile(parse.string(obj["pattern"], where, f"{field}.pattern"))
        except re.error as exc:
            raise where.error(f"is not a regular expression ({exc})", f"{field}.pattern") from None
    capture = obj.get("capture", False)
    if capture and (pattern is None or pattern.groups < 1):
        raise where.error("capture needs a pattern with a group", f"{field}.capture")
    enum = obj.get("enum", [])
    if not isinstance(enum, list) or any(
        isinstance(v, bool) or not isinstance(v, str | int | float) for v in enum
    ):
        raise where.error("must be a list of strings or numbers", f"{field}.enum")
    default_length = 2048 if "url" in (kind, items) else 1000
    return Param(
        name=name,
        type=kind,
        required=required,
        description=_text(obj, "description", where),
        enum=tuple(enum),
        minimum=_number(obj, "minimum", where, field),
        maximum=_number(obj, "maximum", where, field),
        max_length=parse.integer(obj.get("max_length", default_length), where, field, minimum=1),
        pattern=pattern,
        capture=bool(capture),
        items=items,
        min_items=parse.integer(obj.get("min_items", 0), where, f"{field}.min_items"),
        max_items=parse.integer(obj.get("max_items", 20), where, f"{field}.max_items", minimum=1),
        max_bytes=parse.integer(obj.get("max_bytes", 4096), where, f"{field}.max_bytes", minimum=2),
        default=obj.get("default"),
        to=to,
        location=location,
    )
