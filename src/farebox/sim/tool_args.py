"""Arguments for a simulated tool call, derived from the tool's JSON schema and the prompt.

Each top-level property gets a value by its type: strings (and untyped ones) the first five words
of the prompt (or the first `enum` value), integers and numbers the prompt's word count, booleans
true, arrays a one-item list of the phrase, objects `{}`. A schema without properties gives
`{"input": phrase}`. Deterministic, so tests can predict it.
"""

from __future__ import annotations

from collections.abc import Mapping

PHRASE_WORDS = 5
MAX_PROPERTIES = 8


def tool_arguments(parameters: object, prompt: str) -> dict[str, object]:
    """A small arguments object that fits `parameters` (a JSON schema) well enough."""
    words = prompt.split()
    phrase = " ".join(words[:PHRASE_WORDS]) or "sim"
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(properties, Mapping) or not properties:
        return {"input": phrase}
    args: dict[str, object] = {}
    for name, schema in list(properties.items())[:MAX_PROPERTIES]:
        args[str(name)] = _value(schema, phrase, len(words))
    return args


def _value(schema: object, phrase: str, word_count: int) -> object:
    if not isinstance(schema, Mapping):
        return phrase
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind in ("integer", "number"):
        return word_count
    if kind == "boolean":
        return True
    if kind == "array":
        return [phrase]
    if kind == "object":
        return {}
    return phrase
