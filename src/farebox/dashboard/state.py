"""What the dashboard needs besides the API's services, built once by app.py."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from farebox.dashboard.sessions import SessionStore
from farebox.net.ratelimit import PerClientLimit


@dataclass(frozen=True)
class DashboardState:
    sessions: SessionStore
    signin_limit: PerClientLimit
    """Sign-in attempts (customer and console) per client address."""
    form_key: bytes
    """Signs the CSRF token of forms shown before sign-in (derived from the instance secret)."""


def form_key_from(secret: str) -> bytes:
    return hashlib.sha256(b"farebox dashboard forms\x00" + secret.encode()).digest()
