"""Seeing a running gateway: `GET /metrics` (Prometheus), one access line per request, and the
request id that ties a customer's request to its log line and its upstream call.

docs/operators/metrics-and-logs.md explains each series and the log format.
"""
