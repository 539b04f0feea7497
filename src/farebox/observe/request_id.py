"""Request ids: the client's `X-Request-Id` when it is well formed, else one made here."""

from __future__ import annotations

import itertools
import os
import re

MAX_LENGTH = 64
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:@+=/-]{1,64}")


class RequestIds:
    """Unique ids without a system call each: a random per-process prefix and a counter (unique
    across workers and replicas with overwhelming probability). The request layer's carry
    `req_`; a charge's (billing/charge.py) are bare hex."""

    def __init__(self, prefix: str = "req_", random_bytes: int = 6) -> None:
        self._prefix = prefix + os.urandom(random_bytes).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


def accepted(raw: bytes) -> str | None:
    """An incoming X-Request-Id if it is safe to log and forward: 1-64 characters of letters,
    digits and `._:@+=/-` (no spaces, quotes or control characters); None otherwise."""
    if len(raw) > MAX_LENGTH or _WELL_FORMED.fullmatch(raw) is None:
        return None
    return raw.decode("ascii")
