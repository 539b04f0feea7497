"""Data enrichment: fixed-price calls to data providers under /v1/data (PPQ's 27 endpoints,
the /x family, and whatever an operator adds)."""
