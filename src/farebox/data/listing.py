"""GET /v1/data/endpoints: every data endpoint with its provider, path, method, price and
parameters (no auth)."""

from __future__ import annotations

from typing import Any

from farebox.money import format_usd, nanos_to_usd

from .model import DataCatalog, Endpoint, Param


def endpoints_payload(catalog: DataCatalog) -> dict[str, Any]:
    data = [_endpoint(e, catalog) for e in sorted(catalog.endpoints.values(), key=_order)]
    return {"object": "list", "data": data}


def _order(endpoint: Endpoint) -> tuple[str, str]:
    return endpoint.path, endpoint.method


def _endpoint(endpoint: Endpoint, catalog: DataCatalog) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": endpoint.id,
        "provider": endpoint.provider,
        "path": endpoint.public_path,
        "method": endpoint.method,
        "price": nanos_to_usd(endpoint.price),
        "price_usd": format_usd(endpoint.price),
        "description": endpoint.description,
        "parameters": [_param(p) for p in endpoint.params],
        "available": catalog.upstream(endpoint).auth.configured,
    }
    if endpoint.one_of:
        entry["one_of"] = [list(group) for group in endpoint.one_of]
    return entry


def _param(param: Param) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": param.name,
        "type": param.type,
        "required": param.required,
        "description": param.description,
    }
    if param.type == "array":
        entry["items"] = param.items
        entry["max_items"] = param.max_items
    if param.enum:
        entry["enum"] = list(param.enum)
    if param.minimum is not None:
        entry["minimum"] = param.minimum
    if param.maximum is not None:
        entry["maximum"] = param.maximum
    texts = ("string", "url")
    if param.type in texts or (param.type == "array" and param.items in texts):
        entry["max_length"] = param.max_length
    if param.default is not None:
        entry["default"] = param.default
    return entry
