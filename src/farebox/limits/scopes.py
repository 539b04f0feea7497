"""A key's model scope: `allowed_models`, catalog ids or fnmatch patterns (null: every model).

A request names a model; the model is allowed when any entry matches its catalog id or one of
its aliases (`claude-*` allows `claude-test` and whatever the catalog calls it), compared case
sensitively with `fnmatch.fnmatchcase` (`*`, `?`, `[seq]`). Entries are not checked against the
catalog when they are set: the catalog may change, and a pattern matching nothing today is
legitimate. A model outside the scope is refused with 403 `model_not_allowed`, before any hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, Protocol

import orjson

from farebox.errors import Forbidden, InvalidRequest, quoted

MAX_ENTRIES = 64
MAX_ENTRY_CHARS = 128


class ModelNotAllowed(Forbidden):
    code = "model_not_allowed"


def parse_allowed_models(value: Any) -> tuple[str, ...] | None:
    """Customer input (a JSON array of strings, or null) as a scope; 400 on anything else."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidRequest(
            'allowed_models must be an array of model ids or patterns (such as "gpt-4o" or '
            '"claude-*"), or null for every model',
            param="allowed_models",
        )
    if not value:
        raise InvalidRequest(
            "allowed_models must name at least one model or pattern; send null for every model",
            param="allowed_models",
        )
    if len(value) > MAX_ENTRIES:
        raise InvalidRequest(
            f"allowed_models may have at most {MAX_ENTRIES} entries", param="allowed_models"
        )
    entries: list[str] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, str) or not (1 <= len(entry.strip()) <= MAX_ENTRY_CHARS):
            raise InvalidRequest(
                f"allowed_models[{i}] must be a model id or pattern of 1 to {MAX_ENTRY_CHARS} "
                f"characters, not {quoted(entry)}",
                param=f"allowed_models[{i}]",
            )
        if any(ch < " " or ch == "\x7f" for ch in entry):
            raise InvalidRequest(
                f"allowed_models[{i}] must not contain control characters",
                param=f"allowed_models[{i}]",
            )
        if entry.strip() not in entries:
            entries.append(entry.strip())
    return tuple(entries)


def dump_scope(scope: tuple[str, ...] | None) -> str | None:
    """The scope as the database column keeps it (a JSON array, or NULL)."""
    return None if scope is None else orjson.dumps(list(scope)).decode()


def load_scope(stored: str | None) -> tuple[str, ...] | None:
    """The column's value as a scope; NULL (every row made before scopes existed) is none."""
    if stored is None:
        return None
    value = orjson.loads(stored)
    return tuple(str(v) for v in value) if isinstance(value, list) else None


class Named(Protocol):
    """A catalog model (its id and aliases)."""

    @property
    def id(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...


def model_names(model: Named | str) -> tuple[str, ...]:
    """The names a scope is matched against: the id, then any aliases (a data endpoint: its id)."""
    if isinstance(model, str):
        return (model,)
    return (model.id, *model.aliases)


def allows(scope: Sequence[str], names: Sequence[str]) -> bool:
    """True when an entry of `scope` matches one of a model's `names` (its id, its aliases)."""
    return any(fnmatchcase(name, entry) for entry in scope for name in names)


def model_not_allowed(model_id: str) -> ModelNotAllowed:
    return ModelNotAllowed(
        f"This API key may not use the model {quoted(model_id, 128)}: its allowed_models do not "
        "include it. Use one of the key's models, or change allowed_models with PATCH /keys/{id}.",
        param="model",
    )
