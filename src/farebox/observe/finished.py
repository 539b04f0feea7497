"""The requests finished since the last flush, kept as plain tuples until they are counted and
logged together.

Counting a request into the metrics and formatting its access line as it ends cost more end to
end than in a micro-benchmark: each is a few calls into code the request itself has pushed out of
the CPU's caches. The request layer only appends one tuple of strings and numbers (which the
cyclic garbage collector stops tracking at its first pass); every FLUSH_S, before a scrape of
/metrics and at shutdown, `flush` hands the whole batch to the metrics and the access log, each
in one loop.
"""

from __future__ import annotations

import asyncio

from farebox.observe.access_log import AccessLog
from farebox.observe.context import Record
from farebox.observe.metrics import Metrics

FLUSH_S = 0.1  # the longest a finished request waits to be counted and logged
MAX_PENDING = 1000  # a batch this long is flushed at once (memory stays bounded under load)


class Finished:
    def __init__(self, metrics: Metrics | None, access_log: AccessLog | None) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.pending: list[Record] = []
        if metrics is not None:
            metrics.before_flush = self.flush  # a scrape counts the requests finished so far

    def add(self, record: Record) -> None:
        pending = self.pending
        pending.append(record)
        if len(pending) == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:  # no loop (a direct call): now
                self.flush()
        elif len(pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Count and log every request finished so far (the timer's later call finds none)."""
        records, self.pending = self.pending, []
        if not records:
            return
        if self.metrics is not None:
            self.metrics.requests_done(records)
        if self.access_log is not None:
            self.access_log.write(records)
