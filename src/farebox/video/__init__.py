"""Async video jobs: held at submit, polled and settled by a DB-backed background worker."""
