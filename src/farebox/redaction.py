"""Keeping secrets that arrive in URLs out of the logs.

farebox never puts a secret in a URL it builds, but PPQ's API lets a client send one there
(`GET /queries/history?credit_id=…`, the `api_key` filter), and signed media URLs carry their
signature. Uvicorn's access log writes every request's path with its query string; the filter
here replaces those values with `[redacted]` before any handler sees the record, whichever way
the server was started (`farebox serve`, or uvicorn with `farebox.app:app_from_env`).
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

SENSITIVE_QUERY_PARAMS = frozenset({"credit_id", "api_key", "sig"})
REDACTED = "[redacted]"
ACCESS_LOGGERS = ("uvicorn.access",)


def redact_query(target: str) -> str:
    """`target` (a path with its query string) with every sensitive parameter's value replaced.
    Names are compared decoded and case-insensitively, so `credit%5Fid=` is caught too."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    pieces = []
    for piece in query.split("&"):
        name, eq, _value = piece.partition("=")
        if eq and unquote_plus(name).strip().lower() in SENSITIVE_QUERY_PARAMS:
            pieces.append(f"{name}={REDACTED}")
        else:
            pieces.append(piece)
    return path + "?" + "&".join(pieces)


class QueryRedactor(logging.Filter):
    """Redacts sensitive query values in a log record's arguments (uvicorn's access log passes
    the path with its query string as one of them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = redact_query(record.msg)
        return True


def redact_access_logs() -> None:
    """Attach the redactor to the access loggers (once per process, however many apps)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryRedactor) for f in logger.filters):
            logger.addFilter(QueryRedactor())
