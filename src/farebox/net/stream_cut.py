"""Streams farebox breaks off on purpose, logged as one line rather than a crash.

A streamed answer that must not look whole to the client (an enclave that stopped mid-answer, for
example) can only be broken off by raising out of the response body, after the settlement. The
server then closes the connection without the final chunk, which is the point, but also logs
"Exception in ASGI application" with a traceback, which is not: nothing went wrong in farebox.
"""

from __future__ import annotations

import logging

SERVER_ERROR_LOGGERS = ("uvicorn.error",)


class StreamCut(Exception):
    """Raised from a response body to break the client's connection off on purpose."""


class StreamCutNotice(logging.Filter):
    """Turns the server's traceback for a StreamCut into one warning line with its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, StreamCut):
            record.msg = "stream cut on purpose: %s"
            record.args = (str(exc),)
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True


def quiet_stream_cuts() -> None:
    """Install the notice on the server's error logger (idempotent)."""
    for name in SERVER_ERROR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, StreamCutNotice) for f in logger.filters):
            logger.addFilter(StreamCutNotice())
