"""The model catalog: which models exist, how to reach them, and what they cost and sell for."""

from .errors import CatalogError
from .listing import (
    AVERAGE_PROMPT_INPUT_TOKENS,
    AVERAGE_PROMPT_OUTPUT_TOKENS,
    average_prompt_nanos,
    models_payload,
)
from .loader import CATALOG_ENV, DEFAULT_CATALOG_PATH, catalog_from_dict, load_catalog
from .model import (
    MODEL_TYPES,
    PROVIDER_KINDS,
    Catalog,
    CatalogModel,
    ProviderConfig,
    Route,
    TokenPrices,
    UnpricedEntry,
    parse_type_filter,
)

__all__ = [
    "AVERAGE_PROMPT_INPUT_TOKENS",
    "AVERAGE_PROMPT_OUTPUT_TOKENS",
    "CATALOG_ENV",
    "DEFAULT_CATALOG_PATH",
    "MODEL_TYPES",
    "PROVIDER_KINDS",
    "Catalog",
    "CatalogError",
    "CatalogModel",
    "ProviderConfig",
    "Route",
    "TokenPrices",
    "UnpricedEntry",
    "average_prompt_nanos",
    "catalog_from_dict",
    "load_catalog",
    "models_payload",
    "parse_type_filter",
]
