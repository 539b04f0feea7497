"""The catalog's value types: prices, routes, providers, models, and the catalog itself.

All prices are integer nanodollars. Token prices are per 1,000,000 tokens.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from farebox.errors import InvalidRequest, UnknownModel, UnpricedModel, quoted

from .errors import CatalogError

MODEL_TYPES: tuple[str, ...] = ("chat", "embedding", "image", "video", "audio", "speech")
"""Model types a catalog entry may have; `GET /v1/models?type=` accepts these and `all`."""

PROVIDER_KINDS: frozenset[str] = frozenset(
    {"openai", "anthropic", "deepgram", "elevenlabs", "fal", "runway", "local"}
    | {"exa", "serper", "brave", "searxng"}  # web search backends (farebox.search)
    | {"ehbp"}  # confidential enclaves, relayed blind (farebox.private)
)
"""Upstream wire formats. The provider layer refuses a kind it has no adapter for."""


NATIVE_SEARCHES: tuple[str, ...] = ("openai", "anthropic", "perplexity")
"""Provider-run web searches farebox can bill (see catalog/native_search.py)."""
WEB_SEARCH_UNIT = "web_search"
"""The `unit_prices` key of one native search."""


def model_kind(model_type: str) -> str:
    """ "an embedding model", "a chat model": a type with its article, for messages."""
    article = "an" if model_type[:1].lower() in "aeiou" else "a"
    return f"{article} {model_type} model"


UNIT_PRICED_TYPES: frozenset[str] = frozenset({"image", "video", "audio", "speech"})
"""Types sold per unit (image, second, minute, 1K characters) rather than per token."""

_EMPTY: Mapping[str, int] = MappingProxyType({})
_DATED = re.compile(r"^(?P<base>.+)-(?:\d{8}|\d{4}-\d{2}-\d{2})$")
"""A dated model id (`claude-sonnet-4-5-20250929`): resolved by its undated name if it has none."""
_NO_PARAMS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Voice:
    """A speech voice: its id (sent as `voice`), a display name and a short description."""

    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Nanodollars per 1,000,000 tokens. A cache price of None means "not priced separately"."""

    input: int
    output: int
    cache_read: int | None = None
    cache_write: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One way to reach a model: a provider and the model id sent upstream."""

    provider: str
    upstream_model: str


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """An upstream service. Requests go to `base_url` + the endpoint path ("/chat/completions")."""

    name: str
    kind: str
    base_url: str
    api_key: str | None
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 120.0
    idle_timeout_s: float = 60.0
    api_key_env: str | None = None
    """The env var the key is read from (for "set X" hints); None if the provider needs no key."""
    max_tokens_field: str = "max_tokens"
    """Where an OpenAI-compatible upstream takes the output token cap: `max_tokens` (every such
    server knows it) or `max_completion_tokens` (OpenAI's own API, which refuses `max_tokens`
    for its reasoning models). farebox sends the cap in this field whichever the customer used."""
    usage_report: str | None = None
    """An `ehbp` enclave's usage-report convention ("tinfoil": the X-Tinfoil-Usage-Metrics
    header or trailer); None for other kinds."""
    attestation_url: str | None = None
    """Where an `ehbp` enclave's attestation bundle is fetched (default: base_url/attestation)."""
    web_search: str | None = None
    """The provider's own web search ("openai", "anthropic", "perplexity"), when its API has one
    that farebox can bill (catalog/native_search.py)."""


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A servable model: its attributes, its sale price, its upstream cost and its routes."""

    id: str
    name: str
    provider: str
    type: str
    context: int
    max_output: int
    date_added: str
    tokenizer: str
    price: TokenPrices
    cost: TokenPrices | None
    routes: tuple[Route, ...]
    aliases: tuple[str, ...] = ()
    is_free: bool = False
    description: str = ""
    unit_prices: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Nanodollars per unit name: "image", "image:high", "second:1080p", "minute", "1k_chars"."""
    parameters: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_PARAMS)
    """Request parameters the model accepts (images, video) and their allowed values; an empty
    tuple accepts any value. The first allowed value is the default where one is needed."""
    required: tuple[str, ...] = ()
    """Parameters a request must carry (e.g. image_url for image-to-video)."""
    voices: tuple[Voice, ...] = ()
    """Speech voices; the first is the default."""
    max_input_chars: int | None = None
    """Longest speech input accepted, in characters."""
    dimensions: int | None = None
    """An embedding model's vector size; set when it accepts a smaller `dimensions`."""
    all_output_visible: bool = False
    """True when every output token the upstream bills shows in the reply (no hidden reasoning):
    a stream may then send the upstream a cap above what is held, as the meter sees every token
    and cuts the stream when the customer cannot pay. False (the default, the safe rule): the
    cap sent upstream never exceeds what is held when the call starts (see chat/caps.py)."""
    private: bool = False
    """Served by an `ehbp` enclave: end-to-end encrypted, relayed blind (farebox.private)."""
    image_tokens: int | None = None
    """The most tokens one input image may count (a private vision model's hold allowance)."""
    web_search: str | None = None
    """The native web search this model does on routes whose provider offers it (priced per
    search in `unit_prices.web_search`); None: the web plugin searches with farebox's backends."""


@dataclass(frozen=True, slots=True)
class UnpricedEntry:
    """A catalog entry with neither a price nor a resolvable cost: loaded, never served."""

    id: str
    reason: str
    aliases: tuple[str, ...] = ()


def parse_type_filter(type_filter: str | None) -> frozenset[str] | None:
    """`all`, a type or `image,video` -> the set of types, None for all. Raises InvalidRequest."""
    if type_filter is None:
        return None
    wanted = {part.strip().lower() for part in type_filter.split(",") if part.strip()}
    if not wanted or "all" in wanted:
        return None
    unknown = sorted(wanted.difference(MODEL_TYPES))
    if unknown:
        valid = ", ".join(("all", *MODEL_TYPES))
        raise InvalidRequest(
            f"Unknown model type {', '.join(quoted(t) for t in unknown[:3])}"
            f"{' …' if len(unknown) > 3 else ''}. Valid types: {valid} "
            "(several may be given comma-separated, e.g. type=image,video).",
            param="type",
        )
    return frozenset(wanted)


@dataclass(frozen=True)
class Catalog:
    """Every model by id (priced ones only), the upstream providers, and the refused entries."""

    models: Mapping[str, CatalogModel]
    providers: Mapping[str, ProviderConfig]
    unpriced: Mapping[str, UnpricedEntry] = field(default_factory=dict)
    _index: Mapping[str, CatalogModel] = field(init=False, repr=False, compare=False)
    _unpriced_index: Mapping[str, UnpricedEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, CatalogModel] = {}
        unpriced_index: dict[str, UnpricedEntry] = {}
        owner: dict[str, str] = {}
        entries: list[tuple[str, tuple[str, ...]]] = [
            *((m.id, m.aliases) for m in self.models.values()),
            *((u.id, u.aliases) for u in self.unpriced.values()),
        ]
        for model_id, aliases in entries:
            for name in (model_id, *aliases):
                if name in owner and owner[name] != model_id:
                    raise CatalogError(
                        f"{name!r} names both model {owner[name]!r} and model {model_id!r} "
                        "(ids and aliases must be unique)"
                    )
                owner[name] = model_id
        for model in self.models.values():
            for name in (model.id, *model.aliases):
                index[name] = model
        for entry in self.unpriced.values():
            for name in (entry.id, *entry.aliases):
                unpriced_index[name] = entry
        object.__setattr__(self, "_index", MappingProxyType(index))
        object.__setattr__(self, "_unpriced_index", MappingProxyType(unpriced_index))

    def resolve(self, model_id: str) -> CatalogModel:
        """The model named by id or alias (a dated id not listed falls back to its undated
        name). Raises UnknownModel or UnpricedModel."""
        model = self._index.get(model_id)
        if model is not None:
            return model
        dated = _DATED.match(model_id)
        if dated is not None and dated["base"] in self._index:
            return self._index[dated["base"]]
        entry = self._unpriced_index.get(model_id)
        if entry is not None:
            raise UnpricedModel(
                f"The model {quoted(model_id)} has no price on this gateway, so it cannot be used "
                f"({entry.reason}). Pick another model from GET /v1/models, or ask the "
                "operator to price it.",
                param="model",
            )
        raise UnknownModel(
            f"The model {quoted(model_id)} does not exist on this gateway. "
            "See GET /v1/models for the ids you can use.",
            param="model",
        )

    def list(self, type_filter: str | None = None) -> builtins.list[CatalogModel]:
        """Priced models in catalog order, optionally of some types (see parse_type_filter)."""
        types = parse_type_filter(type_filter)
        return [m for m in self.models.values() if types is None or m.type in types]
