"""Fixtures for the routing tests (see routing_support.py)."""

from routing_support import routes

__all__ = ["routes"]
