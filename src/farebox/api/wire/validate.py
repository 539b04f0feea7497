"""The routes' entry to validation (farebox/validation.py, below every layer that reads input)."""

from farebox.validation import as_invalid_request, param_of, validate

__all__ = ["as_invalid_request", "param_of", "validate"]
