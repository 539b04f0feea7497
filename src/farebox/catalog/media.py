"""Catalog fields for media models: accepted parameters, required ones, voices, limits."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from . import parse
from .model import Voice
from .parse import JsonObject, Where


def media_fields(obj: JsonObject, where: Where) -> dict[str, Any]:
    """The CatalogModel keyword arguments read from an entry's media fields."""
    fields: dict[str, Any] = {}
    if "parameters" in obj:
        fields["parameters"] = parameters(obj["parameters"], where, "parameters")
    if "required" in obj:
        fields["required"] = parse.name_list(obj["required"], where, "required")
    if "voices" in obj:
        fields["voices"] = voices(obj["voices"], where, "voices")
    if "max_input_chars" in obj:
        fields["max_input_chars"] = parse.integer(
            obj["max_input_chars"], where, "max_input_chars", minimum=1
        )
    if "dimensions" in obj:
        fields["dimensions"] = parse.integer(obj["dimensions"], where, "dimensions", minimum=1)
    return fields


def parameters(value: object, where: Where, field: str) -> MappingProxyType[str, tuple[str, ...]]:
    """{"quality": ["low", "high"], "negative_prompt": []}: names to allowed values (as text)."""
    obj = parse.as_object(value, where, field)
    result: dict[str, tuple[str, ...]] = {}
    for key, allowed in obj.items():
        name = parse.name(key, where, f"{field}.{key}")
        if not isinstance(allowed, list):
            raise where.error("must be a list of allowed values ([] for any)", f"{field}.{key}")
        values = []
        for item in allowed:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise where.error("allowed values must be strings or numbers", f"{field}.{key}")
            values.append(str(item))
        result[name] = tuple(values)
    return MappingProxyType(result)


def voices(value: object, where: Where, field: str) -> tuple[Voice, ...]:
    """[{"id": "aura-2-arcas-en", "name": "Arcas", "description": "..."}, ...]."""
    if not isinstance(value, list):
        raise where.error("must be a list of voice objects", field)
    result = []
    for i, item in enumerate(value):
        at = f"{field}[{i}]"
        voice = parse.as_object(item, where, at)
        parse.check_keys(voice, ("id", "name", "description"), where, prefix=f"{at}.")
        voice_id = parse.name(voice.get("id"), where, f"{at}.id")
        name = parse.string(voice.get("name", voice_id), where, f"{at}.name")
        description = voice.get("description", "")
        if not isinstance(description, str):
            raise where.error("must be a string", f"{at}.description")
        result.append(Voice(voice_id, name, description))
    if len({v.id for v in result}) != len(result):
        raise where.error("has duplicate voice ids", field)
    return tuple(result)
