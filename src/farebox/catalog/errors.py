"""The error raised for a catalog file that cannot be used."""

from __future__ import annotations


class CatalogError(ValueError):
    """A catalog file or dict is invalid; the message names the file, the model id and the field."""
