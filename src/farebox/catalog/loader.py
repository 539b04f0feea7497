"""Load the catalog: the shipped default file, merged with the operator's file (FAREBOX_CATALOG).

Then check every provider and model, and price each model (see pricing.py) or mark it unpriced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from farebox.billing.tokens import KNOWN_ENCODINGS

from . import enclaves, media, native_search, parse
from .cost_refs import CostNotFound, Costs, UpstreamCost, look_up_here, look_up_in_child, refs_in
from .errors import CatalogError
from .merge import Layer, Merged
from .model import (
    MODEL_TYPES,
    PROVIDER_KINDS,
    UNIT_PRICED_TYPES,
    Catalog,
    CatalogModel,
    ProviderConfig,
    Route,
    TokenPrices,
    UnpricedEntry,
)
from .parse import JsonObject, Where
from .pricing import Pricing, decide

log = logging.getLogger(__name__)

DEFAULT_CATALOG_PATH = Path(__file__).with_name("default_catalog.json")
CATALOG_ENV = "FAREBOX_CATALOG"

_PROVIDER_KEYS = (
    "kind",
    "base_url",
    "api_key_env",
    "connect_timeout_s",
    "first_byte_timeout_s",
    "idle_timeout_s",
    "max_tokens_field",
    *enclaves.PROVIDER_KEYS,
    *native_search.PROVIDER_KEYS,
)
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")
_MODEL_KEYS = (
    "name",
    "provider",
    "type",
    "context",
    "max_output",
    "date_added",
    "tokenizer",
    "price",
    "cost",
    "cost_ref",
    "margin",
    "routes",
    "aliases",
    "description",
    "unit_prices",
    "parameters",
    "required",
    "voices",
    "max_input_chars",
    "dimensions",
    "all_output_visible",
    *enclaves.MODEL_KEYS,
    *native_search.MODEL_KEYS,
    "price_source",
)
_REQUIRED_MODEL_KEYS = ("provider", "type", "context", "max_output", "date_added", "routes")
_DEFAULT_TOKENIZER = "o200k_base"
LOCAL_KIND = "local"
LOCAL_URL = "http://localhost"


def load_catalog(
    override_path: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    base: Path | None = None,
    at: datetime | None = None,
    costs_in_child: bool = False,
) -> Catalog:
    """The shipped catalog (or `base`), merged with `override_path` or else $FAREBOX_CATALOG.

    `at` picks the genai-prices rates in force (default: now). `costs_in_child`: look the
    `cost_ref`s up in a child process, so that this one never loads genai-prices (a serving
    process; see cost_refs.py).
    """
    base_path = base or DEFAULT_CATALOG_PATH
    merged = Merged().apply(
        Layer.read(parse.read_json_file(base_path, "catalog"), str(base_path), override=False)
    )
    if override_path is None and env.get(CATALOG_ENV):
        override_path = Path(env[CATALOG_ENV])
    if override_path is not None:
        layer = Layer.read(
            parse.read_json_file(override_path, "catalog"), str(override_path), override=True
        )
        merged = merged.apply(layer)
    return _build(merged, env, at or datetime.now(UTC), costs_in_child)


def catalog_from_dict(
    data: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
    *,
    at: datetime | None = None,
    source: str = "<catalog>",
) -> Catalog:
    """A complete catalog from a dict in the file format (tests, demo mode); no merging."""
    merged = Merged().apply(Layer.read(data, source, override=False))
    return _build(merged, env, at or datetime.now(UTC))


def _build(
    merged: Merged, env: Mapping[str, str], at: datetime, costs_in_child: bool = False
) -> Catalog:
    providers = {
        name: _provider(name, obj, env, Where(source).of(f"provider {name!r}"))
        for name, (obj, source) in merged.providers.items()
    }
    default_margin = Decimal(0)
    if "margin" in merged.defaults:
        value, source = merged.defaults["margin"]
        default_margin = parse.margin(value, Where(source), "defaults.margin")
    refs = refs_in(obj for obj, _ in merged.models.values())
    costs = look_up_in_child(refs, at) if costs_in_child else look_up_here(refs, at)
    models: dict[str, CatalogModel] = {}
    unpriced: dict[str, UnpricedEntry] = {}
    for model_id, (obj, source) in merged.models.items():
        where = Where(source).of(f"model {model_id!r}")
        entry = _model(model_id, obj, providers, default_margin, at, costs, where)
        if isinstance(entry, UnpricedEntry):
            log.warning("%s: model %r is unpriced, refused: %s", source, model_id, entry.reason)
            unpriced[model_id] = entry
        else:
            models[model_id] = entry
    try:
        return Catalog(
            models=MappingProxyType(models),
            providers=MappingProxyType(providers),
            unpriced=MappingProxyType(unpriced),
        )
    except CatalogError as exc:
        sources = sorted({source for _, source in merged.models.values()})
        raise CatalogError(f"{', '.join(sources)}: {exc}") from exc


def _provider(name: str, obj: JsonObject, env: Mapping[str, str], where: Where) -> ProviderConfig:
    parse.check_keys(obj, _PROVIDER_KEYS, where)
    if "kind" not in obj:
        raise where.error("is required", "kind")
    kind = parse.string(obj["kind"], where, "kind")
    if kind not in PROVIDER_KINDS:
        known = ", ".join(sorted(PROVIDER_KINDS))
        raise where.error(f"unknown kind {kind!r} (known: {known})", "kind")
    if "base_url" not in obj and kind != LOCAL_KIND:  # local models run in-process
        raise where.error("is required", "base_url")
    base_url = parse.string(obj.get("base_url", LOCAL_URL), where, "base_url").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise where.error(f"must be an http:// or https:// URL, got {base_url!r}", "base_url")
    key_env = obj.get("api_key_env")
    if key_env is not None:
        key_env = parse.string(key_env, where, "api_key_env")
    usage_report, attestation_url = enclaves.provider_fields(obj, kind, base_url, where)
    timeouts = {
        key: parse.seconds(obj[key], where, key)
        for key in ("connect_timeout_s", "first_byte_timeout_s", "idle_timeout_s")
        if key in obj
    }
    cap_field = parse.string(obj.get("max_tokens_field", "max_tokens"), where, "max_tokens_field")
    if cap_field not in MAX_TOKENS_FIELDS:
        known = " or ".join(MAX_TOKENS_FIELDS)
        raise where.error(f"must be {known}, got {cap_field!r}", "max_tokens_field")
    return ProviderConfig(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key=(env.get(key_env) or None) if key_env else None,
        api_key_env=key_env,
        max_tokens_field=cap_field,
        usage_report=usage_report,
        attestation_url=attestation_url,
        web_search=native_search.provider_search(obj, kind, where),
        **timeouts,
    )


def _model(
    model_id: str,
    obj: JsonObject,
    providers: Mapping[str, ProviderConfig],
    default_margin: Decimal,
    at: datetime,
    costs: Costs,
    where: Where,
) -> CatalogModel | UnpricedEntry:
    parse.check_keys(obj, _MODEL_KEYS, where)
    for key in _REQUIRED_MODEL_KEYS:
        if key not in obj:
            raise where.error("is required", key)
    model_type = parse.string(obj["type"], where, "type")
    if model_type not in MODEL_TYPES:
        raise where.error(f"unknown type {model_type!r} (known: {', '.join(MODEL_TYPES)})", "type")
    context = parse.integer(obj["context"], where, "context", minimum=1)
    max_output = parse.integer(obj["max_output"], where, "max_output")
    if max_output > context:
        raise where.error(f"{max_output} is larger than the context ({context})", "max_output")
    tokenizer = parse.string(obj.get("tokenizer", _DEFAULT_TOKENIZER), where, "tokenizer")
    if tokenizer not in KNOWN_ENCODINGS:
        known = ", ".join(KNOWN_ENCODINGS)
        raise where.error(f"unknown encoding {tokenizer!r} (known: {known})", "tokenizer")
    routes = _routes(model_id, obj["routes"], providers, where)
    aliases = parse.name_list(obj.get("aliases", []), where, "aliases")
    explicit = parse.token_prices(obj["price"], where, "price") if "price" in obj else None
    margin = parse.margin(obj["margin"], where, "margin") if "margin" in obj else default_margin
    cost, missing_cost = _cost(obj, model_type, at, costs, where)
    pricing = decide(
        explicit=explicit, cost=cost, margin=margin, context=context, missing_cost=missing_cost
    )
    unit_prices = parse.unit_prices(obj.get("unit_prices", {}), where, "unit_prices")
    if model_type in UNIT_PRICED_TYPES:
        pricing = _unit_pricing(pricing, unit_prices, explicit is not None)
    name = parse.string(obj.get("name", model_id), where, "name")
    maker = parse.string(obj["provider"], where, "provider")
    date_added = parse.iso_date(obj["date_added"], where, "date_added")
    description = _description(obj, where)
    if "price_source" in obj:  # where the unit prices were read: documentation, checked as text
        parse.string(obj["price_source"], where, "price_source")
    if pricing.price is None:
        return UnpricedEntry(id=model_id, reason=pricing.reason, aliases=aliases)
    return CatalogModel(
        id=model_id,
        name=name,
        provider=maker,
        type=model_type,
        context=context,
        max_output=max_output,
        date_added=date_added,
        tokenizer=tokenizer,
        price=pricing.price,
        cost=pricing.cost,
        routes=routes,
        aliases=aliases,
        is_free=pricing.is_free,
        description=description,
        unit_prices=unit_prices,
        all_output_visible=parse.boolean(
            obj.get("all_output_visible", False), where, "all_output_visible"
        ),
        **media.media_fields(obj, where),
        **enclaves.model_fields(obj, model_type, routes, providers, where),
        **native_search.model_fields(obj, model_type, routes, providers, unit_prices, where),
    )


def _unit_pricing(pricing: Pricing, unit_prices: Mapping[str, int], explicit: bool) -> Pricing:
    """Image, video, audio and speech models sell per unit: priced when they have unit prices,
    free only when every one of them is zero (an explicit "0" price alone never makes them free).
    """
    if not unit_prices:
        return Pricing(
            price=None,
            cost=pricing.cost,
            reason='it is sold per unit but has no unit_prices (e.g. {"image": "0.04"})',
        )
    price = pricing.price if explicit and pricing.price is not None else TokenPrices(0, 0)
    return Pricing(price=price, cost=pricing.cost, is_free=not any(unit_prices.values()))


def _description(obj: JsonObject, where: Where) -> str:
    value = obj.get("description", "")
    if not isinstance(value, str):
        raise where.error("must be a string", "description")
    return value


def _routes(
    model_id: str, value: object, providers: Mapping[str, ProviderConfig], where: Where
) -> tuple[Route, ...]:
    if not isinstance(value, list) or not value:
        raise where.error('must be a non-empty list of {"provider", "model"} objects', "routes")
    routes: list[Route] = []
    for i, item in enumerate(value):
        field_name = f"routes[{i}]"
        obj = parse.as_object(item, where, field_name)
        parse.check_keys(obj, ("provider", "model"), where, prefix=f"{field_name}.")
        if "provider" not in obj:
            raise where.error("is required", f"{field_name}.provider")
        provider = parse.string(obj["provider"], where, f"{field_name}.provider")
        if provider not in providers:
            known = ", ".join(sorted(providers)) or "none"
            raise where.error(
                f"unknown provider {provider!r} (known: {known})", f"{field_name}.provider"
            )
        upstream = parse.string(obj.get("model", model_id), where, f"{field_name}.model")
        routes.append(Route(provider=provider, upstream_model=upstream))
    return tuple(routes)


def _cost(
    obj: JsonObject, model_type: str, at: datetime, costs: Costs, where: Where
) -> tuple[UpstreamCost | None, str]:
    """The upstream cost (hand-typed `cost` beats `cost_ref`) and, if none, the reason why."""
    if "cost" in obj:
        return UpstreamCost(parse.token_prices(obj["cost"], where, "cost")), ""
    if "cost_ref" not in obj:
        return None, "it has neither a price nor a cost_ref"
    ref = parse.as_object(obj["cost_ref"], where, "cost_ref")
    parse.check_keys(ref, ("provider", "model"), where, prefix="cost_ref.")
    for name in ("provider", "model"):
        if name not in ref:
            raise where.error("is required", f"cost_ref.{name}")
    provider = parse.string(ref["provider"], where, "cost_ref.provider")
    model = parse.string(ref["model"], where, "cost_ref.model")
    key = (provider, model, model_type != "embedding")
    found = costs[key] if key in costs else look_up_here([key], at)[key]
    if isinstance(found, CostNotFound):
        return None, f"it has no price and {found}"
    return found, ""
