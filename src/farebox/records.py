"""`@record`: a frozen dataclass for values made on every request, without frozen's cost.

A `@dataclass(frozen=True)` instance is built by one `object.__setattr__` call per field: 750 ns
for seven fields, against 150 ns for the same class unfrozen (Python 3.11). A paid request makes
about ten such values (its hold request and result, query record, settlement, usage, quote...).
`@record` makes a slotted dataclass with equality and a hash from its fields, as frozen ones
have, that type checkers treat as frozen (`dataclass_transform(frozen_default=True)`: mypy
rejects an assignment to a field). At run time the fields are assignable; nothing assigns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, eq_default=True)
def record(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
