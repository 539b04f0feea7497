"""Which unit price applies: per image by its options, per second of video by its quality, and
the price of one unit at a model's default options (what `GET /v1/models` calls its average)."""

from __future__ import annotations

from collections.abc import Mapping

from farebox.errors import UnpricedModel

from .model import CatalogModel

PER_MINUTE = "minute"
PER_1K_CHARS = "1k_chars"


def image_unit_price(model: CatalogModel, params: Mapping[str, str]) -> int:
    """Nanodollars per image: the most specific unit the catalog prices for these values."""
    quality = params.get("quality")
    shapes = [v for v in (params.get("size"), params.get("resolution")) if v]
    keys = [f"image:{quality}:{shape}" for shape in shapes] if quality else []
    keys += [f"image:{quality}"] if quality else []
    keys += [f"image:{shape}" for shape in shapes]
    keys.append("image")
    for key in keys:
        if key in model.unit_prices:
            return model.unit_prices[key]
    raise UnpricedModel(
        f"{model.id} has no price for these options (looked for {', '.join(keys)}). Ask the "
        "operator to price it.",
        param="model",
    )


def second_price(model: CatalogModel, params: Mapping[str, str]) -> int:
    """Nanodollars per second of video: `second:<quality>`, `second:<resolution>`, `second`."""
    keys = [f"second:{params[p]}" for p in ("quality", "resolution") if p in params]
    keys.append("second")
    for key in keys:
        if key in model.unit_prices:
            return model.unit_prices[key]
    raise UnpricedModel(
        f"{model.id} has no price for these options (looked for {', '.join(keys)}).",
        param="model",
    )


def default_options(model: CatalogModel) -> dict[str, str]:
    """Each restricted parameter at its default (the first allowed value)."""
    return {name: allowed[0] for name, allowed in model.parameters.items() if allowed}


def default_unit_price(model: CatalogModel) -> int | None:
    """One unit (an image, a second, a minute, 1,000 characters) with the options a request
    that sets none gets; None when the catalog prices no unit for them."""
    try:
        if model.type == "image":
            return image_unit_price(model, default_options(model))
        if model.type == "video":
            return second_price(model, default_options(model))
    except UnpricedModel:
        return None
    unit = {"audio": PER_MINUTE, "speech": PER_1K_CHARS}.get(model.type)
    return model.unit_prices.get(unit) if unit else None
