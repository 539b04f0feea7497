"""Layering catalog files: the operator's file merged over the shipped one.

Merge rules for the operator's file:
- `models`: an id that already exists is merged field by field (a shallow merge of the JSON
  object; a field set to null is removed), a new id is added;
- `remove`: ["id", ...] drops shipped models first (so remove + define = a full replacement);
- `replace_defaults: true` drops every shipped model (providers and defaults are kept);
- `providers` and `defaults` merge the same way, by provider name and by key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import parse
from .parse import JsonObject, Where

log = logging.getLogger(__name__)

_TOP_KEYS = ("version", "defaults", "providers", "models")
_OVERRIDE_KEYS = ("remove", "replace_defaults")
_DEFAULTS_KEYS = ("margin",)


@dataclass(frozen=True)
class Layer:
    """One file's top-level sections, checked for shape."""

    source: str
    defaults: JsonObject
    providers: Mapping[str, JsonObject]
    models: Mapping[str, JsonObject]
    remove: tuple[str, ...] = ()
    replace_defaults: bool = False

    @classmethod
    def read(cls, data: object, source: str, *, override: bool) -> Layer:
        where = Where(source)
        top_keys = _TOP_KEYS + (_OVERRIDE_KEYS if override else ())
        top, defaults, replace = parse.file_header(data, where, top_keys, _DEFAULTS_KEYS)
        remove = parse.name_list(top.get("remove", []), where, "remove")
        return cls(
            source=source,
            defaults=defaults,
            providers=_entries(top, "providers", where),
            models=_entries(top, "models", where),
            remove=remove,
            replace_defaults=replace,
        )


def _entries(top: JsonObject, section: str, where: Where) -> dict[str, JsonObject]:
    entries = parse.as_object(top.get(section, {}), where, section)
    result: dict[str, JsonObject] = {}
    for key, value in entries.items():
        path = f"{section}.{key}"
        result[parse.name(key, where, path)] = parse.as_object(value, where, path)
    return result


@dataclass
class Merged:
    """The catalog data after merging, with the file each entry comes from."""

    defaults: dict[str, tuple[Any, str]] = field(default_factory=dict)
    providers: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    models: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)

    def apply(self, layer: Layer) -> Merged:
        models = {} if layer.replace_defaults else dict(self.models)
        for model_id in layer.remove:
            if models.pop(model_id, None) is None:
                log.warning("%s: remove: no model %r to remove", layer.source, model_id)
        defaults = dict(self.defaults)
        for key, value in layer.defaults.items():
            if value is None:
                defaults.pop(key, None)
            else:
                defaults[key] = (value, layer.source)
        return Merged(
            defaults=defaults,
            providers=merge_entries(self.providers, layer.providers, layer.source),
            models=merge_entries(models, layer.models, layer.source),
        )


def merge_entries(
    old: Mapping[str, tuple[dict[str, Any], str]], new: Mapping[str, JsonObject], source: str
) -> dict[str, tuple[dict[str, Any], str]]:
    """`new` over `old`: an existing entry merged field by field (a null field is removed), a new
    one added; each with the file(s) it comes from."""
    merged = dict(old)
    for key, fields in new.items():
        if key in merged:
            previous, previous_source = merged[key]
            combined = {**previous, **fields}
            label = f"{source} (merged over {previous_source})"
        else:
            combined, label = dict(fields), source
        merged[key] = ({k: v for k, v in combined.items() if v is not None}, label)
    return merged
