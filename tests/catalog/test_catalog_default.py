"""The shipped default catalog: loads, every model priced and routable, costs from genai-prices."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

import orjson
import pytest
from genai_prices import Usage, calc_price

from farebox.catalog import DEFAULT_CATALOG_PATH, Catalog, load_catalog
from farebox.catalog.pricing import apply_margin
from farebox.catalog.upstream_costs import lookup_cost
from farebox.money import decimal_usd_to_nanos

RAW = orjson.loads(DEFAULT_CATALOG_PATH.read_bytes())
ALL_IDS = list(RAW["models"])
# Token-priced models take their upstream cost from genai-prices; media models (audio, speech,
# image, video) are priced per unit and genai-prices has no costs for them.
MODEL_IDS = [m for m in ALL_IDS if "cost_ref" in RAW["models"][m]]
MEDIA_IDS = [m for m in ALL_IDS if m not in MODEL_IDS]
UNIT_KINDS = {
    "audio": {"deepgram"},
    "speech": {"deepgram", "elevenlabs"},
    "image": None,
    "video": {"fal", "runway"},
}


@pytest.fixture(scope="module")
def catalog(at: datetime) -> Catalog:
    return load_catalog(env={}, at=at)


def test_loads_all_shipped_models_priced(catalog: Catalog) -> None:
    assert 25 <= len(catalog.models) <= 80
    assert list(catalog.models) == ALL_IDS
    assert dict(catalog.unpriced) == {}


def test_every_model_routable_and_sane(catalog: Catalog) -> None:
    for model in (catalog.models[m] for m in MODEL_IDS):
        assert model.routes, model.id
        for route in model.routes:
            assert route.provider in catalog.providers, (model.id, route.provider)
            assert route.upstream_model
        assert model.price.input > 0 and not model.is_free, model.id
        assert model.type != "chat" or model.price.output > 0, model.id
        assert 0 <= model.max_output <= model.context
        assert model.cost is not None


def test_providers_are_real_services(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        search = provider.name in ("exa", "serper", "brave")  # the web plugin's backends
        native = provider.name in ("anthropic", "deepgram", "fal", "elevenlabs", "runway")
        expected = provider.name if search or native else "openai"
        if provider.name == "tinfoil":  # the private models' enclave router (EHBP)
            expected = "ehbp"
        assert provider.kind == expected
        assert provider.base_url.startswith("https://")
        assert not provider.base_url.endswith("/")
        assert provider.api_key_env  # Runway's own name is RUNWAYML_API_SECRET
        assert provider.api_key_env.endswith(("_API_KEY", "_API_SECRET"))
        assert provider.api_key is None  # env={} here
    assert {"openai", "anthropic", "google", "openrouter", "groq", "together"} <= set(
        catalog.providers
    )


VISIBLE = {
    "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "llama-3.3-70b",
    "gpt-4o-search-preview", "gpt-4o-mini-search-preview",
    "llama-4-maverick", "llama-4-scout", "kimi-k2", "qwen3-235b-a22b-2507", "qwen3-coder",
}  # fmt: skip


def test_only_models_without_reasoning_are_marked_all_output_visible(catalog: Catalog) -> None:
    # Every other model (GPT-5, o-series, Claude, Gemini 2.5, DeepSeek, gpt-oss, Qwen3 32B,
    # GLM, Grok, Kimi K2.5) can think: its streams hold the whole cap sent upstream.
    assert {m.id for m in catalog.models.values() if m.all_output_visible} == VISIBLE
    assert catalog.providers["openai"].max_tokens_field == "max_completion_tokens"


def test_web_search_follows_the_model_as_ppq_describes(catalog: Catalog) -> None:
    """Native search for the OpenAI (search), Anthropic and Perplexity models, priced per
    search from a named public price list; every other model (Grok included: xAI retired its
    chat-completions search) searches with farebox's backends."""
    native = {m.id: m.web_search for m in catalog.models.values() if m.web_search}
    claude = {m.id for m in catalog.models.values() if m.provider == "Anthropic"}
    assert {i for i, s in native.items() if s == "anthropic"} == claude
    assert {i for i, s in native.items() if s == "openai"} == {
        "gpt-4o-search-preview",
        "gpt-4o-mini-search-preview",
    }
    assert {i for i, s in native.items() if s == "perplexity"} == {"sonar", "sonar-pro"}
    assert not any(m.web_search for m in catalog.models.values() if m.provider == "xAI")
    for model_id in native:
        model = catalog.models[model_id]
        assert model.unit_prices["web_search"] > 0
        assert any(
            catalog.providers[r.provider].web_search == model.web_search for r in model.routes
        )
    assert catalog.models["claude-sonnet-4.5"].unit_prices["web_search"] == 12_000_000
    assert catalog.models["sonar"].unit_prices["web_search:high"] == 14_400_000
    raw = orjson.loads(DEFAULT_CATALOG_PATH.read_bytes())
    for model_id in native:
        assert "$" in raw["models"][model_id]["price_source"], model_id


def test_api_keys_come_from_env(at: datetime) -> None:
    catalog = load_catalog(env={"OPENAI_API_KEY": "sk-test", "GROQ_API_KEY": ""}, at=at)
    assert catalog.providers["openai"].api_key == "sk-test"
    assert catalog.providers["groq"].api_key is None


def test_ppq_ids_and_aliases_resolve(catalog: Catalog) -> None:
    for name, expected in [
        ("claude-sonnet-4.6", "claude-sonnet-4.6"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("openai/gpt-5", "gpt-5"),
        ("openai/text-embedding-3-small", "openai/text-embedding-3-small"),
        ("text-embedding-3-small", "openai/text-embedding-3-small"),
    ]:
        assert catalog.resolve(name).id == expected


def _per_million(usage: Usage, ref: dict[str, str], day: datetime, direction: str) -> int:
    """genai-prices' own rate, from calc_price over 100K tokens, highest across the day."""
    rates = []
    for minute in range(0, 24 * 60, 30):
        when = datetime.combine(day.date(), time(minute // 60, minute % 60), tzinfo=day.tzinfo)
        result = calc_price(
            usage, ref["model"], provider_id=ref["provider"], genai_request_timestamp=when
        )
        rates.append(getattr(result, f"{direction}_price") * 10)
    return decimal_usd_to_nanos(max(rates))


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_cost_equals_genai_prices(catalog: Catalog, at: datetime, model_id: str) -> None:
    ref = RAW["models"][model_id]["cost_ref"]
    cost = catalog.models[model_id].cost
    assert cost is not None
    assert cost.input == _per_million(Usage(input_tokens=100_000), ref, at, "input")
    assert cost.output == _per_million(
        Usage(input_tokens=0, output_tokens=100_000), ref, at, "output"
    )
    if cost.cache_read is not None:
        usage = Usage(input_tokens=100_000, cache_read_tokens=100_000)
        assert cost.cache_read == _per_million(usage, ref, at, "input")
    if cost.cache_write is not None:
        usage = Usage(input_tokens=100_000, cache_write_tokens=100_000)
        assert cost.cache_write == _per_million(usage, ref, at, "input")


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_sale_is_default_margin_over_cost(catalog: Catalog, model_id: str) -> None:
    model = catalog.models[model_id]
    assert model.cost is not None
    margin = Decimal(RAW["defaults"]["margin"])
    assert model.price.input == apply_margin(model.cost.input, margin)
    assert model.price.output == apply_margin(model.cost.output, margin)
    assert model.price.input * 5 == model.cost.input * 6  # 20 %, exact for these prices


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_context_never_reaches_a_higher_price_tier(
    catalog: Catalog, at: datetime, model_id: str
) -> None:
    ref = RAW["models"][model_id]["cost_ref"]
    model = catalog.models[model_id]
    cost = lookup_cost(ref["provider"], ref["model"], at=at, requires_output=model.type == "chat")
    assert cost.tier_threshold is None or model.context <= cost.tier_threshold


GENAI_PROVIDER = {"xai": "x-ai"}  # our provider name -> genai-prices id, where they differ


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_no_route_sells_below_its_upstream_cost(
    catalog: Catalog, at: datetime, model_id: str
) -> None:
    """Fallback routes too: the sale price covers every route genai-prices knows a price for."""
    model = catalog.models[model_id]
    for route in model.routes:
        provider = GENAI_PROVIDER.get(route.provider, route.provider)
        try:
            cost = lookup_cost(
                provider, route.upstream_model, at=at, requires_output=model.type == "chat"
            )
        except LookupError:
            continue
        assert model.price.input >= cost.prices.input, (route, cost)
        assert model.price.output >= cost.prices.output, (route, cost)


def test_media_models_are_priced_per_unit_and_routable(catalog: Catalog) -> None:
    assert {catalog.models[m].type for m in MEDIA_IDS} == {"audio", "speech", "image", "video"}
    for model_id in MEDIA_IDS:
        model = catalog.models[model_id]
        assert model.unit_prices and all(p > 0 for p in model.unit_prices.values()), model_id
        for route in model.routes:
            provider = catalog.providers[route.provider]
            expected = UNIT_KINDS[model.type]
            assert expected is None or provider.kind in expected, (model_id, provider.kind)
    assert catalog.resolve("nova-3").type == "audio"  # PPQ's default transcription model
