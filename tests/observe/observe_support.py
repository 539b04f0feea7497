"""What the observability tests share (imported by name: every test folder has a conftest)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from support import Gateway

DB_KINDS = ["sqlite", "postgresql"]
GatewayFactory = Callable[..., AbstractContextManager[Gateway]]
